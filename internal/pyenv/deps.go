package pyenv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Files an agent project declares its dependencies in, and the folder of
// wheels it may vendor.
const (
	RequirementsFile = "requirements.txt"
	PyprojectFile    = "pyproject.toml"
	WheelsDir        = "wheels"
)

// Limits of what Read accepts: a dependency set is a short text, not a
// place to hide data.
const (
	maxFileBytes   = 256 << 10
	maxLines       = 2000
	maxLineBytes   = 8 << 10
	maxIncludes    = 16
	maxWheels      = 512
	maxWheelsBytes = 2 << 30
)

// Deps is an agent's dependency set, as read from its project.
type Deps struct {
	// Source names the file it came from ("requirements.txt",
	// "pyproject.toml"), or "" when the project declares none.
	Source string
	// Lines are the requirement lines to install, in file order, with
	// comments, blank lines and continuations resolved, files included
	// with -r flattened, and whitespace normalized.
	Lines []string
	// Constraints are the lines of files given with -c.
	Constraints []string
	// Wheels are the project's vendored wheels (wheels/*.whl): their
	// names and contents' SHA-256, which are part of the set.
	Wheels []Wheel
	// Hashed: every requirement carries --hash, so pip installs with
	// --require-hashes.
	Hashed bool
}

// Wheel is a vendored wheel file.
type Wheel struct {
	Name   string // file name
	SHA256 string // hex
	Path   string // host path
}

// Empty reports whether d installs nothing.
func (d Deps) Empty() bool { return len(d.Lines) == 0 && len(d.Wheels) == 0 }

// Error is a problem with a project's dependency files, worded for the
// person who wrote them.
type Error struct {
	File string
	Line int // 0: the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Read reads the dependency set of the project in dir: requirements.txt
// if there is one, else [project.dependencies] of pyproject.toml, plus
// the wheels in wheels/. Files and includes must lie inside dir.
func Read(dir string) (Deps, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Deps{}, fmt.Errorf("open the project: %w", err)
	}
	defer root.Close()
	var d Deps
	switch {
	case exists(root, RequirementsFile):
		d.Source = RequirementsFile
		p := &reqParser{root: root, seen: map[string]bool{}}
		if err := p.file(RequirementsFile, false); err != nil {
			return Deps{}, err
		}
		d.Lines, d.Constraints, d.Hashed = p.lines, p.constraints, p.hashed
	case exists(root, PyprojectFile):
		d.Source = PyprojectFile
		b, err := readCapped(root, PyprojectFile)
		if err != nil {
			return Deps{}, err
		}
		if d.Lines, err = pyprojectDeps(b); err != nil {
			return Deps{}, err
		}
	}
	if d.Wheels, err = vendoredWheels(root, dir); err != nil {
		return Deps{}, err
	}
	return d, nil
}

func exists(root *os.Root, name string) bool {
	st, err := root.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

func readCapped(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot be read: " + errText(err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot be read: " + errText(err)}
	}
	if len(b) > maxFileBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("is larger than %d KiB", maxFileBytes>>10)}
	}
	return b, nil
}

// errText is err's message without the host path an *fs.PathError
// carries.
func errText(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// reqParser reads requirements files (pip's format) into lines.
type reqParser struct {
	root        *os.Root
	seen        map[string]bool
	includes    int
	lines       []string
	constraints []string
	hashed      bool
	unhashed    bool
}

// Options a requirements file may carry, and what is refused: where
// packages come from is the server's to say (serve --package-index,
// --find-links), and nothing outside the project may be installed.
var (
	passOptions = []string{"--pre", "--prefer-binary", "--only-binary", "--no-binary"}
	refused     = map[string]string{
		"-i": "index", "--index-url": "index", "--extra-index-url": "index", "--no-index": "index",
		"-f": "links", "--find-links": "links", "--trusted-host": "index",
		"-e": "editable", "--editable": "editable",
	}
)

func (p *reqParser) file(name string, constraint bool) error {
	clean := path.Clean(filepath.ToSlash(name))
	if p.seen[clean] {
		return &Error{File: name, Msg: "is included twice (a loop of -r or -c)"}
	}
	p.seen[clean] = true
	b, err := readCapped(p.root, clean)
	if err != nil {
		return err
	}
	if !utf8Valid(b) {
		return &Error{File: name, Msg: "is not UTF-8 text"}
	}
	logical, err := joinContinuations(name, b)
	if err != nil {
		return err
	}
	for _, l := range logical {
		if err := p.line(name, l.n, l.text, constraint); err != nil {
			return err
		}
	}
	if p.hashed && p.unhashed {
		return &Error{File: name, Msg: "some requirements carry --hash and some do not; pip's hash-checking mode needs every one pinned with a hash"}
	}
	return nil
}

type logicalLine struct {
	n    int
	text string
}

// joinContinuations splits b into logical lines: comments removed, lines
// ending in a backslash joined with the next, blank ones dropped.
func joinContinuations(name string, b []byte) ([]logicalLine, error) {
	var out []logicalLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes+1)
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		if n > maxLines {
			return nil, &Error{File: name, Msg: fmt.Sprintf("has more than %d lines", maxLines)}
		}
		line := stripComment(sc.Text())
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		if text := strings.Join(strings.Fields(cur.String()), " "); text != "" {
			out = append(out, logicalLine{start, text})
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: name, Line: n + 1, Msg: fmt.Sprintf("line is longer than %d bytes", maxLineBytes)}
	}
	if text := strings.Join(strings.Fields(cur.String()), " "); text != "" {
		out = append(out, logicalLine{start, text})
	}
	return out, nil
}

// stripComment removes a comment: "#" at the start or after whitespace
// (pip's rule: "pkg#egg" in a URL is not one).
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

func (p *reqParser) line(name string, n int, text string, constraint bool) error {
	fail := func(msg string) error { return &Error{File: name, Line: n, Msg: msg} }
	if strings.ContainsFunc(text, func(r rune) bool { return r < ' ' && r != '\t' }) {
		return fail("holds control characters")
	}
	if strings.HasPrefix(text, "-") {
		opt, arg, _ := strings.Cut(text, " ")
		if o, v, ok := strings.Cut(opt, "="); ok {
			opt, arg = o, v
		}
		switch {
		case opt == "-r" || opt == "--requirement" || opt == "-c" || opt == "--constraint":
			if arg == "" {
				return fail(opt + " needs a file name")
			}
			if p.includes++; p.includes > maxIncludes {
				return fail(fmt.Sprintf("more than %d files included", maxIncludes))
			}
			inc := path.Join(path.Dir(filepath.ToSlash(name)), arg)
			if !filepath.IsLocal(inc) {
				return fail(fmt.Sprintf("%s %s lies outside the project; include only files inside it", opt, arg))
			}
			return p.file(inc, constraint || opt == "-c" || opt == "--constraint")
		case refused[opt] == "index":
			return fail(fmt.Sprintf("%s is not allowed here: the server chooses the package indexes (runagent serve --package-index); ask its operator to add yours", opt))
		case refused[opt] == "links":
			return fail(fmt.Sprintf("%s is not allowed here: put wheels in the project's %s/ folder, or ask the server's operator for --find-links", opt, WheelsDir))
		case refused[opt] == "editable":
			return fail(fmt.Sprintf("%s (an editable install) is not supported: agents are installed read-only; list the package by name", opt))
		case slices.Contains(passOptions, opt):
			p.lines = append(p.lines, text)
			return nil
		default:
			return fail(fmt.Sprintf("option %s is not supported in an agent's requirements", opt))
		}
	}
	req := text
	if strings.Contains(text, " --hash") || strings.Contains(text, "\t--hash") {
		p.hashed = true
	} else if !constraint {
		p.unhashed = true
	}
	spec, _, _ := strings.Cut(req, " --")
	if isLocalPath(spec) {
		return fail(fmt.Sprintf("%q is a path: local packages are not installed from the project; vendor a wheel in %s/ and list it by name", spec, WheelsDir))
	}
	if constraint {
		p.constraints = append(p.constraints, text)
	} else {
		p.lines = append(p.lines, text)
	}
	return nil
}

// isLocalPath reports whether a requirement names a file or directory
// rather than a package ("./pkg", "../x.whl", "/abs", "file:...").
func isLocalPath(spec string) bool {
	s := strings.TrimSpace(spec)
	if _, rest, ok := strings.Cut(s, "@"); ok {
		s = strings.TrimSpace(rest) // "name @ url"
	}
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") ||
		strings.HasPrefix(strings.ToLower(s), "file:")
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// pyprojectDeps returns [project.dependencies] of a pyproject.toml.
func pyprojectDeps(b []byte) ([]string, error) {
	var doc struct {
		Project struct {
			Dependencies []string `toml:"dependencies"`
		} `toml:"project"`
	}
	if err := toml.Unmarshal(b, &doc); err != nil {
		msg := err.Error()
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, &Error{File: PyprojectFile, Line: row, Msg: "is not valid TOML: " + de.Error()}
		}
		return nil, &Error{File: PyprojectFile, Msg: "[project] dependencies must be a list of strings: " + msg}
	}
	var out []string
	for _, dep := range doc.Project.Dependencies {
		dep = strings.Join(strings.Fields(dep), " ")
		switch {
		case dep == "":
			continue
		case strings.HasPrefix(dep, "-") || strings.ContainsFunc(dep, func(r rune) bool { return r < ' ' }):
			return nil, &Error{File: PyprojectFile, Msg: fmt.Sprintf("dependency %q is not a requirement", dep)}
		case isLocalPath(dep):
			return nil, &Error{File: PyprojectFile, Msg: fmt.Sprintf("dependency %q is a path: vendor a wheel in %s/ and list it by name", dep, WheelsDir)}
		}
		out = append(out, dep)
	}
	if len(out) > maxLines {
		return nil, &Error{File: PyprojectFile, Msg: fmt.Sprintf("lists more than %d dependencies", maxLines)}
	}
	return out, nil
}

// vendoredWheels lists wheels/*.whl with their hashes.
func vendoredWheels(root *os.Root, dir string) ([]Wheel, error) {
	entries, err := fs.ReadDir(root.FS(), WheelsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{File: WheelsDir + "/", Msg: "cannot be read: " + errText(err)}
	}
	var out []Wheel
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".whl") {
			continue
		}
		if len(out) == maxWheels {
			return nil, &Error{File: WheelsDir + "/", Msg: fmt.Sprintf("holds more than %d wheels", maxWheels)}
		}
		rel := WheelsDir + "/" + e.Name()
		f, err := root.Open(rel)
		if err != nil {
			return nil, &Error{File: rel, Msg: "cannot be read: " + errText(err)}
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(f, maxWheelsBytes-total+1))
		f.Close()
		if err != nil {
			return nil, &Error{File: rel, Msg: "cannot be read: " + errText(err)}
		}
		if total += n; total > maxWheelsBytes {
			return nil, &Error{File: WheelsDir + "/", Msg: fmt.Sprintf("holds more than %d GiB of wheels", maxWheelsBytes>>30)}
		}
		out = append(out, Wheel{Name: e.Name(), SHA256: hex.EncodeToString(h.Sum(nil)), Path: filepath.Join(dir, WheelsDir, e.Name())})
	}
	return out, nil
}
