package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeTree creates files (slash path → content) under dir. A path
// ending in "/" creates a directory.
func writeTree(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// readTree returns every path under dir: files map to their content and
// mode, directories to "dir" and their mode.
func readTree(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case fi.IsDir():
			out[rel+"/"] = "dir " + fi.Mode().Perm().String()
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fi.Mode().Perm().String() + " " + string(data)
		default:
			out[rel] = "special " + fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustPack(tb testing.TB, dir string, lim Limits) ([]byte, string) {
	tb.Helper()
	data, hash, err := Pack(dir, lim)
	if err != nil {
		tb.Fatalf("Pack(%s): %v", dir, err)
	}
	return data, hash
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"runagent.config.json":   `{"agent_name":"x"}`,
		"main.py":                "print('hi')\n",
		"pkg/__init__.py":        "",
		"pkg/deep/er/mod.py":     "x = 1\n",
		"empty/":                 "",
		"data/ü n i c ø d e.txt": "ünïcode",
		strings.Repeat("long-name-", 12) + "/" + strings.Repeat("y", 120) + ".txt": "long path",
	})
	if err := os.Chmod(filepath.Join(src, "main.py"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "pkg"), 0o700); err != nil {
		t.Fatal(err)
	}
	data, hash := mustPack(t, src, Limits{})
	if hash != Hash(data) || !strings.HasPrefix(hash, "sha256:") || len(hash) != len("sha256:")+64 {
		t.Errorf("hash = %q, want sha256 of data %q", hash, Hash(data))
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(data, dest, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := readTree(t, src)
	want["main.py"] = "-rwxr-xr-x print('hi')\n" // modes are normalised
	want["pkg/"] = "dir -rwxr-xr-x"
	if diff := cmp.Diff(want, readTree(t, dest)); diff != "" {
		t.Errorf("unpacked tree mismatch (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dest mode = %v, %v; want 0755", fi.Mode(), err)
	}
}

func TestPackDeterministic(t *testing.T) {
	files := map[string]string{"main.py": "a", "b/c.py": "c", "b/d/": "", "z.txt": "z"}
	one, two := t.TempDir(), t.TempDir()
	writeTree(t, one, files)
	writeTree(t, two, files)
	_, h1 := mustPack(t, one, Limits{})
	_, again := mustPack(t, one, Limits{})
	if h1 != again {
		t.Errorf("packing twice: %s then %s", h1, again)
	}
	// Different mtimes, a different umask-ish mode, a different directory.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{"main.py", "b/c.py", "b", "b/d"} {
		if err := os.Chtimes(filepath.Join(two, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(two, "z.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, h2 := mustPack(t, two, Limits{}); h2 != h1 {
		t.Errorf("same tree with other mtimes and modes: %s, want %s", h2, h1)
	}
	// Excluded files do not change the hash.
	writeTree(t, two, map[string]string{"__pycache__/main.cpython-311.pyc": "x", ".env": "SECRET=1"})
	if _, h3 := mustPack(t, two, Limits{}); h3 != h1 {
		t.Errorf("with excluded files: %s, want %s", h3, h1)
	}
	// Content changes do.
	writeTree(t, two, map[string]string{"z.txt": "Z"})
	if _, h4 := mustPack(t, two, Limits{}); h4 == h1 {
		t.Errorf("changed content kept hash %s", h4)
	}
}

func TestPackHeaders(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"b.py": "b", "a/x.py": "x", "a-b.py": "ab"})
	data, _ := mustPack(t, src, Limits{})
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q, mtime %v; want none", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || hdr.ModTime.Unix() != 0 {
			t.Errorf("%s: uid %d gid %d uname %q gname %q mtime %v; want all zero", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.ModTime)
		}
	}
	if diff := cmp.Diff([]string{"a-b.py", "a/", "a/x.py", "b.py"}, names); diff != "" {
		t.Errorf("entry order (-want +got):\n%s", diff)
	}
}

func TestPackExclusions(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"main.py":                 "keep",
		".git/HEAD":               "ref",
		"sub/.git":                "gitdir: ../.git/worktrees/x",
		".hg/x":                   "",
		".svn/x":                  "",
		"__pycache__/m.pyc":       "",
		"pkg/__pycache__/m.pyc":   "",
		"pkg/mod.pyc":             "",
		"pkg/mod.pyo":             "",
		"pkg/mod.py":              "keep",
		".venv/bin/python":        "",
		"venv/lib/x":              "",
		"web/node_modules/a/b.js": "",
		".DS_Store":               "",
		"pkg/.DS_Store":           "",
		".env":                    "SECRET=1",
		".env.local":              "SECRET=2",
		"conf/.env.production":    "SECRET=3",
		"env.py":                  "keep",
		".envrc":                  "keep",
		".runagentignore":         "# comment\n\n*.log\n/build\ndata/*.csv\ncache/\n  tmp  \n",
		"app.log":                 "",
		"deep/x/app.log":          "",
		"build/out.bin":           "",
		"sub/build/keep.txt":      "keep",
		"data/a.csv":              "",
		"data/a.json":             "keep",
		"data/more/b.csv":         "keep",
		"cache/x":                 "",
		"x/cache":                 "keep (a file, pattern is for directories)",
		"tmp/x":                   "",
		"notes/tmp":               "",
	})
	data, _ := mustPack(t, src, Limits{})
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(data, dest, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	var got []string
	for name := range readTree(t, dest) {
		got = append(got, name)
	}
	want := []string{
		".envrc", ".runagentignore", "data/", "data/a.json", "data/more/", "data/more/b.csv",
		"deep/", "deep/x/", "env.py", "main.py", "notes/", "pkg/", "pkg/mod.py", "sub/",
		"sub/build/", "sub/build/keep.txt", "web/", "x/", "x/cache", "conf/",
	}
	if diff := cmp.Diff(want, got, sortStrings); diff != "" {
		t.Errorf("packed paths (-want +got):\n%s", diff)
	}
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestIgnoreFileErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"negation", "*.log\n!keep.log\n", "line 2: negated patterns"},
		{"malformed", "[a-\n", "line 1: malformed pattern"},
		{"only slash", "/\n", "line 1: pattern matches nothing"},
		{"too large", strings.Repeat("#\n", maxIgnoreBytes), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string]string{"main.py": "", IgnoreFile: tt.content})
			_, _, err := Pack(src, Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Pack error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPackSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "secret"})

	t.Run("in-tree file is copied", func(t *testing.T) {
		src := t.TempDir()
		writeTree(t, src, map[string]string{"real/agent.py": "code"})
		if err := os.Chmod(filepath.Join(src, "real/agent.py"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("real/agent.py", filepath.Join(src, "main.py")); err != nil {
			t.Fatal(err)
		}
		data, _ := mustPack(t, src, Limits{})
		dest := filepath.Join(t.TempDir(), "out")
		if err := Unpack(data, dest, Limits{}); err != nil {
			t.Fatal(err)
		}
		got := readTree(t, dest)
		if got["main.py"] != "-rwxr-xr-x code" {
			t.Errorf("main.py unpacked as %q, want a regular copy of its target", got["main.py"])
		}
	})

	tests := []struct {
		name   string
		target func(src string) string
		want   string
	}{
		{"absolute outside", func(string) string { return filepath.Join(outside, "secret.txt") }, "points outside"},
		{"relative outside", func(string) string { return "../../../../../../../.." + filepath.Join(outside, "secret.txt") }, "points outside"},
		{"absolute to inside", func(src string) string { return filepath.Join(src, "main.py") }, "points outside"},
		{"broken", func(string) string { return "nothere" }, "is broken"},
		{"directory", func(string) string { return "pkg" }, "points to a directory"},
		{"loop", func(string) string { return "link" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string]string{"main.py": "", "pkg/a.py": ""})
			if err := os.Symlink(tt.target(src), filepath.Join(src, "link")); err != nil {
				t.Fatal(err)
			}
			_, _, err := Pack(src, Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"link"`) {
				t.Errorf("Pack error = %v, want one naming \"link\" containing %q", err, tt.want)
			}
		})
	}
}

func TestPackSpecialFiles(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"main.py": ""})
	if err := syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, _, err := Pack(src, Limits{})
	if err == nil || !strings.Contains(err.Error(), `"pipe" is a special file`) {
		t.Errorf("Pack error = %v, want a special-file error naming pipe", err)
	}
}

func TestPackBadNames(t *testing.T) {
	for _, name := range []string{`back\slash.py`, "ctl\x01.py", "bad\xffutf8.py"} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string]string{name: "x"})
			_, _, err := Pack(src, Limits{})
			if err == nil || !strings.Contains(err.Error(), "cannot pack") {
				t.Errorf("Pack error = %v, want a refusal", err)
			}
		})
	}
}

func TestPackLimits(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		lim   Limits
		want  string
	}{
		{"too many files", map[string]string{"a": "", "b": "", "c": ""}, Limits{MaxFiles: 2}, `more than 2 files and directories (at "c")`},
		{"directories count", map[string]string{"a/b/c": ""}, Limits{MaxFiles: 2}, `(at "a/b/c")`},
		{"file too big", map[string]string{"small": "x", "big.bin": "0123456789"}, Limits{MaxFileBytes: 9}, `file "big.bin" is 10 bytes`},
		{"total too big", map[string]string{"a": "123456", "b": "123456"}, Limits{MaxBytes: 10}, `more than 10 bytes (at "b")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tt.files)
			_, _, err := Pack(src, tt.lim)
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Pack error = %v, want ErrTooLarge containing %q", err, tt.want)
			}
		})
	}
	t.Run("exactly at the limits", func(t *testing.T) {
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a": "12345", "b": "12345"})
		data := mustPackLim(t, src, Limits{MaxFiles: 2, MaxBytes: 10, MaxFileBytes: 5})
		if err := Unpack(data, filepath.Join(t.TempDir(), "out"), Limits{MaxFiles: 2, MaxBytes: 10, MaxFileBytes: 5}); err != nil {
			t.Errorf("Unpack at the limits: %v", err)
		}
	})
}

func mustPackLim(tb testing.TB, dir string, lim Limits) []byte {
	data, _ := mustPack(tb, dir, lim)
	return data
}

// tarEntry describes one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) tarEntry {
	return tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body}
}

// makeArchive builds a tar.gz from entries, bypassing Pack's checks.
func makeArchive(tb testing.TB, entries ...tarEntry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			tb.Fatalf("WriteHeader(%q): %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// bombArchive returns a small gzip holding a tar header that declares
// size bytes followed by that many zeros.
func bombArchive(tb testing.TB, name string, size int64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeros{}, size); err != nil {
		tb.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// rawEntry builds one ustar entry by hand: a header block and the body
// padded to a block. For typeflag 'x' or 'g' the records are PAX
// records; otherwise records[0] is the body.
func rawEntry(typeflag byte, name string, records ...string) []byte {
	var body string
	if typeflag == 'x' || typeflag == 'g' {
		for _, r := range records {
			// "%d %s\n" where the length counts itself.
			n := len(r) + 3
			for len(fmt.Sprintf("%d %s\n", n, r)) != n {
				n++
			}
			body += fmt.Sprintf("%d %s\n", n, r)
		}
	} else if len(records) > 0 {
		body = records[0]
	}
	var hdr [512]byte
	copy(hdr[0:100], name)
	copy(hdr[100:108], "0000644\x00")
	copy(hdr[108:116], "0000000\x00")
	copy(hdr[116:124], "0000000\x00")
	copy(hdr[124:136], fmt.Sprintf("%011o\x00", len(body)))
	copy(hdr[136:148], "00000000000\x00")
	hdr[156] = typeflag
	copy(hdr[257:265], "ustar\x0000")
	copy(hdr[148:156], "        ")
	sum := 0
	for _, b := range hdr {
		sum += int(b)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(hdr[:], body...)
	if pad := len(body) % 512; pad != 0 {
		out = append(out, make([]byte, 512-pad)...)
	}
	return out
}

// rawArchive gzips hand-made entries followed by the end-of-archive
// marker.
func rawArchive(tb testing.TB, entries ...[]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, e := range entries {
		zw.Write(e)
	}
	zw.Write(make([]byte, 1024))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestRawArchiveHelper(t *testing.T) {
	// The hand-made format must be readable, or the hostile tests above
	// would pass for the wrong reason.
	data := rawArchive(t, rawEntry('x', "pax", "path=dir/long-name.txt"), rawEntry('0', "short", "hello"))
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(data, dest, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := map[string]string{"dir/": "dir -rwxr-xr-x", "dir/long-name.txt": "-rw-r--r-- hello"}
	if diff := cmp.Diff(want, readTree(t, dest)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestUnpackHostile(t *testing.T) {
	small := Limits{MaxFiles: 10, MaxBytes: 1 << 20, MaxFileBytes: 512 << 10}
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		lim  Limits
		want string
	}{
		{"dotdot", func(t *testing.T) []byte { return makeArchive(t, file("../evil", "x")) }, Limits{}, "'..'"},
		{"inner dotdot", func(t *testing.T) []byte { return makeArchive(t, file("a/../../evil", "x")) }, Limits{}, "'..'"},
		{"absolute", func(t *testing.T) []byte { return makeArchive(t, file("/tmp/evil", "x")) }, Limits{}, "absolute"},
		{"backslash", func(t *testing.T) []byte { return makeArchive(t, file(`..\evil`, "x")) }, Limits{}, "backslash"},
		{"NUL in PAX path", func(t *testing.T) []byte {
			return rawArchive(t, rawEntry('x', "pax", "path=a\x00b"), rawEntry('0', "a", "x"))
		}, Limits{}, "read archive"},
		{"dotdot in PAX path", func(t *testing.T) []byte {
			return rawArchive(t, rawEntry('x', "pax", "path=../../evil"), rawEntry('0', "innocent", "x"))
		}, Limits{}, "'..'"},
		{"GNU long name escape", func(t *testing.T) []byte {
			return rawArchive(t, rawEntry('L', "././@LongLink", "../evil\x00"), rawEntry('0', "innocent", "x"))
		}, Limits{}, "'..'"},
		{"dot slash", func(t *testing.T) []byte { return makeArchive(t, file("./a", "x")) }, Limits{}, "not clean"},
		{"empty name", func(t *testing.T) []byte { return makeArchive(t, file("", "x")) }, Limits{}, ""},
		{"symlink", func(t *testing.T) []byte {
			return makeArchive(t, tarEntry{tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc/passwd", Mode: 0o777}, ""})
		}, Limits{}, "symlink"},
		{"symlink then file through it", func(t *testing.T) []byte {
			return makeArchive(t,
				tarEntry{tar.Header{Typeflag: tar.TypeSymlink, Name: "d", Linkname: "/tmp", Mode: 0o777}, ""},
				file("d/evil", "x"))
		}, Limits{}, "symlink"},
		{"hard link", func(t *testing.T) []byte {
			return makeArchive(t, file("a", "x"), tarEntry{tar.Header{Typeflag: tar.TypeLink, Name: "b", Linkname: "a"}, ""})
		}, Limits{}, "hard link"},
		{"char device", func(t *testing.T) []byte {
			return makeArchive(t, tarEntry{tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666}, ""})
		}, Limits{}, "character device"},
		{"block device", func(t *testing.T) []byte {
			return makeArchive(t, tarEntry{tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o666}, ""})
		}, Limits{}, "block device"},
		{"fifo", func(t *testing.T) []byte {
			return makeArchive(t, tarEntry{tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o666}, ""})
		}, Limits{}, "FIFO"},
		{"duplicate file", func(t *testing.T) []byte { return makeArchive(t, file("a", "1"), file("a", "2")) }, Limits{}, "appears twice"},
		{"duplicate dir", func(t *testing.T) []byte {
			d := tarEntry{tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}, ""}
			return makeArchive(t, d, d)
		}, Limits{}, "appears twice"},
		{"file over implicit dir", func(t *testing.T) []byte { return makeArchive(t, file("a/b", "1"), file("a", "2")) }, Limits{}, `entry "a"`},
		{"file under file", func(t *testing.T) []byte { return makeArchive(t, file("a", "1"), file("a/b", "2")) }, Limits{}, `entry "a/b"`},
		{"too many entries", func(t *testing.T) []byte {
			return makeArchive(t, file("a", ""), file("b", ""), file("c", ""))
		}, Limits{MaxFiles: 2}, "more than 2 files"},
		{"declared file too big", func(t *testing.T) []byte { return makeArchive(t, file("big", "0123456789")) }, Limits{MaxFileBytes: 5}, `"big" is 10 bytes`},
		{"total too big", func(t *testing.T) []byte { return makeArchive(t, file("a", "123456"), file("b", "123456")) }, Limits{MaxBytes: 10}, `(at "b")`},
		{"decompression bomb", func(t *testing.T) []byte {
			data := bombArchive(t, "zeros", 16<<20)
			if len(data) > 128<<10 {
				t.Fatalf("bomb is %d bytes compressed; the test wants a small one", len(data))
			}
			return data
		}, small, "over the limit"},
		{"trailing bomb", func(t *testing.T) []byte {
			// A valid archive whose gzip stream continues with a huge run
			// of zeros after the end of the tar.
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
			tw.Close()
			io.CopyN(zw, zeros{}, 16<<20)
			zw.Close()
			return buf.Bytes()
		}, small, "larger than allowed"},
		{"PAX sparse", func(t *testing.T) []byte {
			return rawArchive(t,
				rawEntry('x', "pax", "GNU.sparse.size=1000000000", "GNU.sparse.numblocks=1", "GNU.sparse.offset=0", "GNU.sparse.numbytes=1", "GNU.sparse.map=0,1"),
				rawEntry('0', "s", "x"))
		}, Limits{}, "sparse"},
		{"GNU sparse", func(t *testing.T) []byte { return rawArchive(t, rawEntry('S', "s", "")) }, Limits{}, ""},
		{"global header", func(t *testing.T) []byte {
			return rawArchive(t, rawEntry('g', "g", "comment=x"), rawEntry('0', "a", "x"))
		}, Limits{}, "global header"},
		{"not gzip", func(*testing.T) []byte { return []byte("PK\x03\x04 zip file") }, Limits{}, "not a gzip stream"},
		{"truncated", func(t *testing.T) []byte {
			data := makeArchive(t, file("a", strings.Repeat("abc", 1000)))
			return data[:len(data)/2]
		}, Limits{}, "read archive"},
		{"corrupt checksum", func(t *testing.T) []byte {
			data := makeArchive(t, file("a", "hello"))
			data[len(data)-8] ^= 0xff // CRC-32
			return data
		}, Limits{}, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			err := Unpack(tt.data(t), dest, tt.lim)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Unpack error = %v, want one containing %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("Unpack left %v behind", names(ents))
			}
			if strings.Contains(tt.want, "limit") || tt.lim != (Limits{}) && strings.Contains(tt.name, "big") {
				if !errors.Is(err, ErrTooLarge) {
					t.Errorf("Unpack error = %v, want ErrTooLarge", err)
				}
			}
		})
	}
}

func names(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestUnpackDest(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"main.py": "x"})
	data, _ := mustPack(t, src, Limits{})

	t.Run("empty existing dir", func(t *testing.T) {
		dest := t.TempDir()
		if err := Unpack(data, dest, Limits{}); err != nil {
			t.Fatalf("Unpack into an empty directory: %v", err)
		}
		if got := readTree(t, dest); got["main.py"] != "-rw-r--r-- x" {
			t.Errorf("tree = %v", got)
		}
	})
	t.Run("non-empty dir", func(t *testing.T) {
		dest := t.TempDir()
		writeTree(t, dest, map[string]string{"keep": "mine"})
		if err := Unpack(data, dest, Limits{}); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("Unpack error = %v, want not empty", err)
		}
		if diff := cmp.Diff(map[string]string{"keep": "-rw-r--r-- mine"}, readTree(t, dest)); diff != "" {
			t.Errorf("dest changed (-want +got):\n%s", diff)
		}
	})
	t.Run("file", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "f")
		writeTree(t, filepath.Dir(dest), map[string]string{"f": ""})
		if err := Unpack(data, dest, Limits{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Unpack error = %v, want not a directory", err)
		}
	})
	t.Run("symlink to empty dir", func(t *testing.T) {
		parent := t.TempDir()
		target := t.TempDir()
		dest := filepath.Join(parent, "link")
		if err := os.Symlink(target, dest); err != nil {
			t.Fatal(err)
		}
		if err := Unpack(data, dest, Limits{}); err == nil {
			t.Errorf("Unpack through a symlinked destination succeeded")
		}
	})
	t.Run("missing parent", func(t *testing.T) {
		if err := Unpack(data, filepath.Join(t.TempDir(), "a", "b"), Limits{}); err == nil {
			t.Errorf("Unpack with a missing parent succeeded")
		}
	})
}

func TestUnpackModes(t *testing.T) {
	data := makeArchive(t,
		tarEntry{tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o700}, ""},
		tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "d/setuid", Mode: 0o4777, Size: 1}, "x"},
		tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: "e/f/private", Mode: 0o600, Size: 1}, "y"},
	)
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(data, dest, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := map[string]string{
		"d/": "dir -rwxr-xr-x", "d/setuid": "-rwxr-xr-x x",
		"e/": "dir -rwxr-xr-x", "e/f/": "dir -rwxr-xr-x", "e/f/private": "-rw-r--r-- y",
	}
	if diff := cmp.Diff(want, readTree(t, dest)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestHash(t *testing.T) {
	if got, want := Hash([]byte("abc")), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Hash(abc) = %s, want %s", got, want)
	}
}

func FuzzUnpack(f *testing.F) {
	src := f.TempDir()
	writeTree(f, src, map[string]string{"main.py": "print(1)", "a/b.txt": "b", "e/": ""})
	data, _ := mustPack(f, src, Limits{})
	f.Add(data)
	f.Add(makeArchive(f, file("../evil", "x")))
	f.Add(makeArchive(f, tarEntry{tar.Header{Typeflag: tar.TypeSymlink, Name: "d", Linkname: "/tmp"}, ""}, file("d/x", "x")))
	f.Add(makeArchive(f, file("a/b", "1"), file("a", "2")))
	f.Add(makeArchive(f, file("a", "1"), file("a", "2")))
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b"))
	lim := Limits{MaxFiles: 50, MaxBytes: 1 << 20, MaxFileBytes: 256 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		// base/p/out: an entry escaping one or two levels would show up
		// in p or base.
		base := t.TempDir()
		parent := filepath.Join(base, "p")
		if err := os.Mkdir(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(parent, "out")
		err := Unpack(data, dest, lim)
		if ents, _ := os.ReadDir(base); len(ents) != 1 {
			t.Fatalf("Unpack wrote %v next to its parent", names(ents))
		}
		ents, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if len(ents) != 0 {
				t.Fatalf("failed Unpack (%v) left %v behind", err, names(ents))
			}
			return
		}
		if len(ents) != 1 || ents[0].Name() != "out" {
			t.Fatalf("Unpack wrote %v next to dest", names(ents))
		}
		werr := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !d.Type().IsRegular() {
				t.Errorf("unpacked %s has type %v", p, d.Type())
			}
			return nil
		})
		if werr != nil {
			t.Fatal(werr)
		}
	})
}

func TestStreamCap(t *testing.T) {
	if got := streamCap(Limits{MaxFiles: 1 << 62, MaxBytes: 1}); got <= 0 {
		t.Errorf("streamCap with huge MaxFiles = %d, want a positive cap", got)
	}
	if got, want := streamCap(Limits{MaxFiles: 1, MaxBytes: 10}), int64(10+2*entryOverhead+1<<20); got != want {
		t.Errorf("streamCap = %d, want %d", got, want)
	}
}

func FuzzParseIgnore(f *testing.F) {
	f.Add([]byte("# c\n*.log\n/build\ndata/*.csv\ncache/\n"), "data/x.csv", true)
	f.Add([]byte("[a-\n"), "a", false)
	f.Add([]byte("!x\n"), "x", false)
	f.Fuzz(func(t *testing.T, data []byte, name string, isDir bool) {
		ign, err := parseIgnore(data)
		if err != nil {
			return
		}
		for _, p := range ign.patterns {
			if p.glob == "" || strings.HasPrefix(p.glob, "/") {
				t.Fatalf("pattern %+v from %q", p, data)
			}
			if _, err := path.Match(p.glob, "x"); err != nil {
				t.Fatalf("kept malformed pattern %q", p.glob)
			}
		}
		ign.match(name, isDir)
	})
}
