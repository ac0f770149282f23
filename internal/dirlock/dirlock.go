package dirlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names in the data directory.
const (
	LockName = "serve.lock"
	InfoName = "serve.json"
)

// Info names the process holding a directory.
type Info struct {
	PID     int       `json:"pid"`
	Addr    string    `json:"addr,omitempty"`
	Command string    `json:"command,omitempty"` // "serve", "keys recover"
	Since   time.Time `json:"since"`
}

// HeldError is returned by Acquire when another process holds the
// directory. Info is nil when the holder has not said who it is (yet).
type HeldError struct {
	Dir  string
	Info *Info
}

func (e *HeldError) Error() string {
	if e.Info == nil {
		return fmt.Sprintf("data directory %s is in use by another runagent process (it holds %s)", e.Dir, filepath.Join(e.Dir, LockName))
	}
	who := fmt.Sprintf("pid %d", e.Info.PID)
	if e.Info.Command != "" {
		who = fmt.Sprintf("runagent %s, pid %d", e.Info.Command, e.Info.PID)
	}
	if e.Info.Addr != "" {
		who += ", serving on " + e.Info.Addr
	}
	return fmt.Sprintf("data directory %s is in use by another runagent (%s, since %s)",
		e.Dir, who, e.Info.Since.Local().Format(time.DateTime))
}

// Lock is a held directory.
type Lock struct {
	f    *os.File
	dir  string
	info Info
}

// Acquire takes dir for this process, saying who holds it (command, and
// addr if already known). If another process holds it, the error is a
// *HeldError and nothing in dir is changed.
func Acquire(dir, command, addr string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errHeld) {
			return nil, &HeldError{Dir: dir, Info: holder(dir)}
		}
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	l := &Lock{f: f, dir: dir, info: Info{PID: os.Getpid(), Command: command, Since: time.Now().UTC().Truncate(time.Second)}}
	if err := l.Publish(addr); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Publish records the address this process serves on.
func (l *Lock) Publish(addr string) error {
	l.info.Addr = addr
	b, err := json.Marshal(l.info)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, InfoName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", InfoName, err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, InfoName)); err != nil {
		return fmt.Errorf("write %s: %w", InfoName, err)
	}
	return nil
}

// Release gives the directory up. The lock file stays (removing it would
// let a waiting process lock a file no longer in the directory).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	os.Remove(filepath.Join(l.dir, InfoName))
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// holder reads serve.json, believing it only if its process lives.
func holder(dir string) *Info {
	b, err := os.ReadFile(filepath.Join(dir, InfoName))
	if err != nil {
		return nil
	}
	var in Info
	if json.Unmarshal(b, &in) != nil || in.PID <= 0 || !alive(in.PID) {
		return nil
	}
	return &in
}
