// Package dotenv reads .env files (KEY=value lines, # comments, quotes,
// export prefixes, ${VAR} of earlier keys) as agent secrets, with
// github.com/joho/godotenv doing the parsing. Every name must be usable
// as a secret (core.CheckSecretName), and errors never quote the file:
// it holds secrets.
package dotenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/joho/godotenv"

	"github.com/runagent/runagent/internal/core"
)

// MaxSize bounds a .env file.
const MaxSize = 1 << 20

// Name is the file an agent project's secrets are read from.
const Name = ".env"

// Read parses the .env file at path; a missing file wraps fs.ErrNotExist.
func Read(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars, err := Parse(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// Parse parses a .env file from r.
func Parse(r io.Reader) (map[string]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	vars, err := godotenv.Parse(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		// The parser's message quotes the file, which holds secrets.
		return nil, errors.New("not a valid .env file: want NAME=value lines, # comments, values in matching quotes")
	}
	for name := range vars {
		if err := core.CheckSecretName(name); err != nil {
			return nil, fmt.Errorf("variable %s: %s", name, core.ErrorMessage(err))
		}
	}
	return vars, nil
}
