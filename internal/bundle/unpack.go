package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// entryOverhead is what one entry may add to the decompressed stream
// beyond its content: its header, a PAX header for a long name, padding.
const entryOverhead = 4 << 10

// Unpack extracts a package made by Pack into dest, which must not exist
// or be an empty directory; its parent must exist. The archive is
// untrusted: see the package documentation for what is refused. On error
// nothing is left at dest (an empty dest that existed is left as it was).
func Unpack(data []byte, dest string, lim Limits) (err error) {
	lim = lim.withDefaults()
	if err := checkDest(dest); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".unpack-*")
	if err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := extract(data, tmp, lim); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("set directory mode: %w", err)
	}
	// os.Rename refuses to replace a directory, even an empty one.
	removed := false
	if err := os.Remove(dest); err == nil {
		removed = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace empty destination: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		if removed {
			os.Mkdir(dest, 0o755) // put the empty directory back
		}
		return fmt.Errorf("move unpacked tree into place: %w", err)
	}
	return nil
}

func checkDest(dest string) error {
	fi, err := os.Lstat(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("check destination: %w", err)
	case !fi.IsDir():
		return errors.New("destination exists and is not a directory")
	}
	f, err := os.Open(dest)
	if err != nil {
		return fmt.Errorf("check destination: %w", err)
	}
	defer f.Close()
	if names, _ := f.Readdirnames(1); len(names) > 0 {
		return errors.New("destination directory is not empty")
	}
	return nil
}

// extract unpacks data into the empty directory dir.
func extract(data []byte, dir string, lim Limits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open staging directory: %w", err)
	}
	defer root.Close()

	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	zr.Multistream(false)
	stream := &capReader{r: zr, left: streamCap(lim)}
	tr := tar.NewReader(stream)

	seen := make(map[string]bool)
	var dirs []string
	var total int64
	for count := 1; ; count++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if count > lim.MaxFiles {
			return fmt.Errorf("more than %d files and directories: %w", lim.MaxFiles, ErrTooLarge)
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
		}
		if err := checkName(name); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if seen[name] {
			return fmt.Errorf("entry %q appears twice", name)
		}
		seen[name] = true
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return fmt.Errorf("entry %q: sparse files are not supported", name)
			}
		}

		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
			dirs = append(dirs, name)
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > lim.MaxFileBytes {
				return fmt.Errorf("entry %q is %d bytes, over the limit of %d bytes per file: %w", name, hdr.Size, lim.MaxFileBytes, ErrTooLarge)
			}
			if total += hdr.Size; total > lim.MaxBytes {
				return fmt.Errorf("files add up to more than %d bytes (at %q): %w", lim.MaxBytes, name, ErrTooLarge)
			}
			if parent := path.Dir(name); parent != "." {
				if err := root.MkdirAll(parent, 0o755); err != nil {
					return fmt.Errorf("entry %q: %w", name, err)
				}
				dirs = append(dirs, parent)
			}
			if err := writeFile(root, name, hdr, tr); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q has type %s; only regular files and directories are allowed", name, typeName(hdr.Typeflag))
		}
	}
	// Read to the end so that gzip verifies its checksum.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	// MkdirAll's modes are subject to the umask; make them uniform.
	for _, d := range dirs {
		for ; d != "."; d = path.Dir(d) {
			if err := root.Chmod(d, 0o755); err != nil {
				return fmt.Errorf("set mode of %q: %w", d, err)
			}
		}
	}
	return nil
}

func writeFile(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	mode := os.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	n, err := io.Copy(f, r)
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Chmod(mode) // not subject to the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeXGlobalHeader:
		return "global header"
	}
	return fmt.Sprintf("%q", t)
}

// streamCap is the most decompressed bytes a package within lim can
// take: its content, per-entry overhead and the end-of-archive padding.
func streamCap(lim Limits) int64 {
	const most = math.MaxInt64 / 2
	overhead := int64(lim.MaxFiles+1) * entryOverhead
	if lim.MaxFiles > most/entryOverhead || lim.MaxBytes > most || overhead > most {
		return math.MaxInt64
	}
	return lim.MaxBytes + overhead + 1<<20
}

// capReader reads from r until left bytes have been read, then fails with
// ErrTooLarge: a small gzip stream can decompress to a huge one.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Allow reading exactly to the cap: only more data is an error.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("decompressed archive is larger than allowed: %w", ErrTooLarge)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
