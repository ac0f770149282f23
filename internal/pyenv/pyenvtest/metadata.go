package pyenvtest

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path"
	"regexp"
	"strings"
)

// metadata is what an index needs from a distribution's core metadata.
type metadata struct {
	Name, Version, RequiresPython string
}

// readMetadata reads the core metadata inside a wheel (its
// *.dist-info/METADATA) or an sdist (its top-level PKG-INFO).
func readMetadata(file string) (metadata, error) {
	var raw []byte
	var err error
	switch base := path.Base(file); {
	case strings.HasSuffix(base, ".whl"):
		raw, err = wheelMetadata(file)
	case strings.HasSuffix(base, ".tar.gz"):
		raw, err = sdistMetadata(file)
	default:
		return metadata{}, fmt.Errorf("%s: neither a wheel (.whl) nor an sdist (.tar.gz)", file)
	}
	if err != nil {
		return metadata{}, fmt.Errorf("%s: %w", file, err)
	}
	// Core metadata is RFC 822 headers; the description may follow a
	// blank line. A blank line is appended for files that have no body.
	h, err := textproto.NewReader(bufio.NewReader(strings.NewReader(string(raw) + "\n\n"))).ReadMIMEHeader()
	if err != nil {
		return metadata{}, fmt.Errorf("%s: metadata: %w", file, err)
	}
	m := metadata{Name: h.Get("Name"), Version: h.Get("Version"), RequiresPython: h.Get("Requires-Python")}
	if m.Name == "" || m.Version == "" {
		return metadata{}, fmt.Errorf("%s: metadata has no Name or Version", file)
	}
	return m, nil
}

func wheelMetadata(file string) ([]byte, error) {
	z, err := zip.OpenReader(file)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	for _, f := range z.File {
		dir, name := path.Split(f.Name)
		if name == "METADATA" && strings.HasSuffix(dir, ".dist-info/") && strings.Count(dir, "/") == 1 {
			r, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer r.Close()
			return io.ReadAll(io.LimitReader(r, 1<<20))
		}
	}
	return nil, errors.New("no *.dist-info/METADATA in the wheel")
}

func sdistMetadata(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no top-level PKG-INFO in the sdist")
		}
		if err != nil {
			return nil, err
		}
		dir, name := path.Split(strings.TrimPrefix(h.Name, "./"))
		if name == "PKG-INFO" && strings.Count(dir, "/") == 1 {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

var separators = regexp.MustCompile(`[-_.]+`)

// Normalize returns a project name's PEP 503 normalized form, the one an
// index serves it under: "Attrs_X.y" → "attrs-x-y".
func Normalize(name string) string {
	return strings.ToLower(separators.ReplaceAllString(name, "-"))
}
