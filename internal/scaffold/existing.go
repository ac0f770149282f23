package scaffold

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/agentcfg"
)

// IDChange is what AssignID did to a project's config.
type IDChange struct {
	Path string // the config file
	// Old is the agent_id's JSON value before the change ("" when the
	// field was absent): a quoted string, or null.
	Old string
	New string // the agent_id written
	// Problems are what agentcfg.Load still finds wrong with the project
	// after the change (nil when it loads): serve and deploy will refuse
	// it until they are fixed.
	Problems error
}

// AssignID writes a fresh agent_id into the runagent.config.json of the
// project in dir: a project copied from RunAgent's templates (which carry
// the nil UUID), one without an id, or one whose id is not a UUID. Only
// the agent_id's value changes (or the member is added after the last
// one); every other byte of the file, unknown fields and formatting
// included, stays as it was. A valid id is replaced only with force: it
// names the agent on a server, with its versions, secrets and
// invocations.
func AssignID(dir string, force bool) (*IDChange, error) {
	p := filepath.Join(dir, agentcfg.FileName)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: --existing gives an existing agent project a fresh agent_id; "+
			"to create a project there, run `runagent init %s` (see --framework)", dir, agentcfg.FileName, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", agentcfg.FileName, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (a symlink?); set its agent_id by hand", p)
	}
	data, err := readLimited(p)
	if err != nil {
		return nil, err
	}
	// Parse reports what is wrong with the file as a whole (not JSON, not
	// an object, too large) better than the locator below would.
	if _, _, err := agentcfg.Parse(data, agentcfg.FileName); err != nil {
		var es agentcfg.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				if e.Field == "" {
					return nil, fmt.Errorf("%s: %w; fix the file first", dir, e)
				}
			}
		}
	}

	bom := []byte("\xef\xbb\xbf")
	body, hadBOM := bytes.CutPrefix(data, bom)
	loc, err := locateAgentID(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	change := &IDChange{Path: p, New: uuid.NewString()}
	if loc.found {
		change.Old = string(body[loc.start:loc.end])
		var old string
		if json.Unmarshal(body[loc.start:loc.end], &old) == nil {
			if u, err := uuid.Parse(old); err == nil && len(old) == 36 && u != uuid.Nil && !force {
				return nil, fmt.Errorf("%s already has agent_id %s; nothing changed. The id names the agent on a server "+
					"(its versions, secrets, keys and invocations); to give this project an id of its own anyway "+
					"(a copy that must become another agent), pass --force", dir, old)
			}
		}
	}
	edited := withAgentID(body, loc, change.New)
	if hadBOM {
		edited = append(append([]byte{}, bom...), edited...)
	}
	if err := replaceFile(p, edited, fi.Mode().Perm()); err != nil {
		return nil, err
	}
	if _, _, err := agentcfg.Load(dir); err != nil {
		change.Problems = err
	}
	return change, nil
}

// readLimited reads a config file of at most agentcfg.MaxSize bytes.
func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", agentcfg.FileName, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, agentcfg.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", agentcfg.FileName, err)
	}
	if len(data) > agentcfg.MaxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, agentcfg.MaxSize)
	}
	return data, nil
}

// idLocation is where agent_id is, or would go, in a config's top-level
// object.
type idLocation struct {
	found      bool
	start, end int // the value's bytes, when found
	members    int // the object's members
	insertAt   int // where a new member goes: after the last value, or after '{'
	sep        string
	colon      string // what separates the keys from their values: ": " or ":"
}

// locateAgentID finds the top-level agent_id member of a JSON object, or
// the place and spacing for a new last member: the line break and
// indentation (or the space) that precede the first member, and the colon
// as the first member writes it.
func locateAgentID(data []byte) (idLocation, error) {
	loc := idLocation{sep: " ", colon: ": "}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return loc, errors.New("is not a JSON object")
	}
	loc.insertAt = int(dec.InputOffset())
	for dec.More() {
		prevEnd := loc.insertAt // not InputOffset: More has skipped the space before the key
		tok, err := dec.Token()
		if err != nil {
			return loc, fmt.Errorf("invalid JSON: %w", err)
		}
		key, _ := tok.(string)
		keyEnd := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return loc, fmt.Errorf("invalid JSON: %w", err)
		}
		valueEnd := int(dec.InputOffset())
		valueStart := valueEnd - len(raw)
		if loc.members == 0 {
			keyStart := bytes.IndexByte(data[prevEnd:keyEnd], '"') + prevEnd
			if ws := data[prevEnd:keyStart]; bytes.ContainsRune(ws, '\n') {
				loc.sep = string(ws[bytes.LastIndexByte(ws, '\n'):])
			}
			loc.colon = string(data[keyEnd:valueStart])
		}
		loc.members++
		loc.insertAt = valueEnd
		if key == "agent_id" {
			if loc.found {
				return loc, errors.New("has agent_id twice; keep one and run again")
			}
			loc.found, loc.start, loc.end = true, valueStart, valueEnd
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return loc, errors.New("is not a JSON object")
	}
	return loc, nil
}

// withAgentID returns data, whose agent_id loc located, with agent_id
// set to id.
func withAgentID(data []byte, loc idLocation, id string) []byte {
	value := []byte(`"` + id + `"`)
	if loc.found {
		return splice(data, loc.start, loc.end, value)
	}
	member := append([]byte(`"agent_id"`+loc.colon), value...)
	if loc.members > 0 {
		member = append([]byte(","+loc.sep), member...)
	}
	return splice(data, loc.insertAt, loc.insertAt, member)
}

// splice returns data with data[start:end] replaced by insert.
func splice(data []byte, start, end int, insert []byte) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(insert))
	out = append(out, data[:start]...)
	out = append(out, insert...)
	return append(out, data[end:]...)
}

// replaceFile writes data to p through a temporary file in the same
// directory and a rename, so a crash leaves the old file or the new one.
func replaceFile(p string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", agentcfg.FileName, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", agentcfg.FileName, err)
	}
	return nil
}
