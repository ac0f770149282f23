package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// IgnoreFile is the name of the per-project exclusion list.
const IgnoreFile = ".runagentignore"

// excludedNames are left out wherever they appear, whatever their type:
// version control (.git may be a file in worktrees), caches, virtual
// environments and secrets.
var excludedNames = []string{
	".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules",
	".DS_Store", ".env",
}

func excluded(base string) bool {
	return slices.Contains(excludedNames, base) ||
		strings.HasPrefix(base, ".env.") ||
		strings.HasSuffix(base, ".pyc") || strings.HasSuffix(base, ".pyo")
}

// entry is one path to pack.
type entry struct {
	name string // slash-separated, relative to the root
	dir  bool
	exec bool
	size int64
}

func (e entry) tarName() string {
	if e.dir {
		return e.name + "/"
	}
	return e.name
}

// epoch is the modification time of every entry.
var epoch = time.Unix(0, 0)

// Pack packages the project in dir as a deterministic tar.gz and returns
// it with its Hash. See the package documentation for what is included.
// Exceeding lim gives an error wrapping ErrTooLarge that names the path.
func Pack(dir string, lim Limits) (data []byte, hash string, err error) {
	lim = lim.withDefaults()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", fmt.Errorf("open project directory: %w", err)
	}
	defer root.Close()
	ign, err := readIgnore(root)
	if err != nil {
		return nil, "", err
	}
	entries, err := collect(root, ign, lim)
	if err != nil {
		return nil, "", err
	}

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // header: no name, no time
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := writeEntry(tw, root, e); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("finish archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("finish compression: %w", err)
	}
	data = buf.Bytes()
	return data, Hash(data), nil
}

// collect walks the tree and returns what to pack, sorted by name (so a
// directory precedes its contents), enforcing lim.
func collect(root *os.Root, ign *ignorer, lim Limits) ([]entry, error) {
	var (
		entries []entry
		total   int64
	)
	err := fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read %q: %w", name, err)
		}
		if name == "." {
			return nil
		}
		isDir := d.IsDir()
		if excluded(d.Name()) || ign.match(name, isDir) {
			if isDir {
				return fs.SkipDir
			}
			return nil
		}
		if err := checkName(name); err != nil {
			return fmt.Errorf("cannot pack %q: %w", name, err)
		}
		if len(entries) >= lim.MaxFiles {
			return fmt.Errorf("more than %d files and directories (at %q): %w", lim.MaxFiles, name, ErrTooLarge)
		}
		if isDir {
			entries = append(entries, entry{name: name, dir: true})
			return nil
		}
		var fi fs.FileInfo
		switch t := d.Type(); {
		case t.IsRegular():
			if fi, err = d.Info(); err != nil {
				return fmt.Errorf("stat %q: %w", name, err)
			}
		case t&fs.ModeSymlink != 0:
			// Root.Stat follows the link only while it stays in the tree.
			fi, err = root.Stat(name)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("symlink %q is broken", name)
			case err != nil:
				return fmt.Errorf("symlink %q points outside the project directory", name)
			case fi.IsDir():
				return fmt.Errorf("symlink %q points to a directory; only symlinks to files are supported", name)
			case !fi.Mode().IsRegular():
				return fmt.Errorf("symlink %q points to a special file; only regular files can be packed", name)
			}
		default:
			return fmt.Errorf("%q is a special file (device, socket or FIFO); only regular files and directories can be packed", name)
		}
		size := fi.Size()
		if size > lim.MaxFileBytes {
			return fmt.Errorf("file %q is %d bytes, over the limit of %d bytes per file: %w", name, size, lim.MaxFileBytes, ErrTooLarge)
		}
		if total += size; total > lim.MaxBytes {
			return fmt.Errorf("files add up to more than %d bytes (at %q): %w", lim.MaxBytes, name, ErrTooLarge)
		}
		entries = append(entries, entry{name: name, exec: fi.Mode()&0o111 != 0, size: size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Sort by name as stored, directories with their trailing slash, so
	// that a directory's contents follow it directly.
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.tarName(), b.tarName()) })
	return entries, nil
}

func writeEntry(tw *tar.Writer, root *os.Root, e entry) error {
	hdr := &tar.Header{Name: e.tarName(), ModTime: epoch, Format: tar.FormatPAX}
	switch {
	case e.dir:
		hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
	case e.exec:
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o755, e.size
	default:
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, e.size
	}
	if e.dir {
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %q: %w", e.name, err)
		}
		return nil
	}
	f, err := root.Open(e.name)
	if err != nil {
		return fmt.Errorf("open %q: %w", e.name, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %q: %w", e.name, err)
	}
	if _, err := io.CopyN(tw, f, e.size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("file %q shrank while it was being packed", e.name)
		}
		return fmt.Errorf("read %q: %w", e.name, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n > 0 {
		return fmt.Errorf("file %q grew while it was being packed", e.name)
	}
	return nil
}

// ignorer matches paths against the patterns of a .runagentignore file.
type ignorer struct {
	patterns []ignorePattern
}

type ignorePattern struct {
	glob     string
	anchored bool // matched against the whole path, not the last element
	dirOnly  bool
}

// Limits of an ignore file.
const (
	maxIgnoreBytes    = 64 << 10
	maxIgnorePatterns = 1000
)

// readIgnore parses root's .runagentignore, if any. Each line is a
// path.Match glob; blank lines and lines starting with '#' are skipped. A
// pattern without '/' matches any file or directory of that name at any
// depth; one with '/' matches the path from the project root (a leading
// '/' is optional); a trailing '/' matches directories only. A matched
// directory is left out with everything in it. Negation ('!') is not
// supported and is an error, as is a malformed glob.
func readIgnore(root *os.Root) (*ignorer, error) {
	f, err := root.Open(IgnoreFile)
	if errors.Is(err, fs.ErrNotExist) {
		return &ignorer{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", IgnoreFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIgnoreBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	if len(data) > maxIgnoreBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", IgnoreFile, maxIgnoreBytes)
	}
	return parseIgnore(data)
}

func parseIgnore(data []byte) (*ignorer, error) {
	ign := &ignorer{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIgnoreBytes+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			return nil, fmt.Errorf("%s line %d: negated patterns ('!') are not supported", IgnoreFile, n)
		}
		p := ignorePattern{}
		if strings.HasSuffix(line, "/") {
			p.dirOnly = true
			line = strings.TrimRight(line, "/")
		}
		if strings.Contains(line, "/") {
			p.anchored = true
			line = strings.TrimLeft(line, "/")
		}
		if line == "" {
			return nil, fmt.Errorf("%s line %d: pattern matches nothing", IgnoreFile, n)
		}
		if _, err := path.Match(line, ""); err != nil {
			return nil, fmt.Errorf("%s line %d: malformed pattern %q", IgnoreFile, n, line)
		}
		p.glob = line
		if len(ign.patterns) >= maxIgnorePatterns {
			return nil, fmt.Errorf("%s has more than %d patterns", IgnoreFile, maxIgnorePatterns)
		}
		ign.patterns = append(ign.patterns, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	return ign, nil
}

func (ig *ignorer) match(name string, isDir bool) bool {
	base := path.Base(name)
	for _, p := range ig.patterns {
		if p.dirOnly && !isDir {
			continue
		}
		subject := base
		if p.anchored {
			subject = name
		}
		if ok, _ := path.Match(p.glob, subject); ok {
			return true
		}
	}
	return false
}
