package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/runagent/runagent/internal/server"
)

// storeFlags name the store a command opens: --store (or
// $RUNAGENT_STORE_URL) or --store-file (or $RUNAGENT_STORE_URL_FILE) for
// PostgreSQL; neither for SQLite in the data directory. serve, doctor and
// the offline commands (db, audit, keys rotate-master, keys recover)
// share them.
type storeFlags struct {
	url, file string
	// urlFlag is --store, to tell a URL typed on the command line (where
	// a password would show in the process list) from one in the
	// environment.
	urlFlag *pflag.Flag
}

// add defines the flags. Their environment variables are read by resolve,
// not taken as the flags' defaults: --help prints defaults, and a URL in
// the environment may hold a password.
func (s *storeFlags) add(f *pflag.FlagSet) {
	f.StringVar(&s.url, "store", "", "keep the server's state in PostgreSQL (postgres://user@host:5432/database), which several nodes may share; default: SQLite in the data directory [$RUNAGENT_STORE_URL]")
	f.StringVar(&s.file, "store-file", "", "file holding the PostgreSQL store URL (keeps a password out of the process list) [$RUNAGENT_STORE_URL_FILE]")
	s.urlFlag = f.Lookup("store")
}

// resolve returns the store URL the flags name, "" for SQLite. A password
// on the command line is refused; a URL from a file or the environment
// may carry one. Errors never show it.
func (s *storeFlags) resolve() (string, error) {
	onArgv := s.urlFlag != nil && s.urlFlag.Changed
	if onArgv && server.StoreURLHasPassword(s.url) {
		return "", errors.New("--store: a password on the command line shows in the process list and shell history: put the URL in a file (--store-file) or in $RUNAGENT_STORE_URL")
	}
	u, file := s.url, s.file
	if !onArgv {
		u = os.Getenv("RUNAGENT_STORE_URL")
	}
	if file == "" && !onArgv {
		file = os.Getenv("RUNAGENT_STORE_URL_FILE")
	}
	if file != "" {
		if onArgv {
			return "", errors.New("--store and --store-file both name the store: give one")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--store-file: %w", err)
		}
		u = strings.TrimSpace(string(b))
	}
	if u != "" {
		if err := server.CheckStoreURL(u); err != nil {
			return "", fmt.Errorf("--store: %w", err)
		}
	}
	return u, nil
}

// redisFlags name the Redis that several nodes share: --redis-url (or
// $RUNAGENT_REDIS_URL) or --redis-url-file (or $RUNAGENT_REDIS_URL_FILE).
type redisFlags struct {
	url, file string
	urlFlag   *pflag.Flag
}

// add defines the flags; resolve reads their environment variables (see
// storeFlags.add).
func (r *redisFlags) add(f *pflag.FlagSet) {
	f.StringVar(&r.url, "redis-url", "", "share rate limits, client blocks and deploy and key-rotation notices between nodes, and reach runs on other nodes (cancel, stream rejoin, ?wait=), through Redis (redis://host:6379/0); unreachable at start = refuse to start, later = 503 [$RUNAGENT_REDIS_URL]")
	f.StringVar(&r.file, "redis-url-file", "", "file holding the Redis URL (keeps a password out of the process list) [$RUNAGENT_REDIS_URL_FILE]")
	r.urlFlag = f.Lookup("redis-url")
}

// resolve returns the Redis URL the flags name, "" for none; a password
// on the command line is refused.
func (r *redisFlags) resolve() (string, error) {
	onArgv := r.urlFlag != nil && r.urlFlag.Changed
	if onArgv && server.URLHasPassword(r.url) {
		return "", errors.New("--redis-url: a password on the command line shows in the process list and shell history: put the URL in a file (--redis-url-file) or in $RUNAGENT_REDIS_URL")
	}
	u, file := r.url, r.file
	if !onArgv {
		u = os.Getenv("RUNAGENT_REDIS_URL")
	}
	if file == "" && !onArgv {
		file = os.Getenv("RUNAGENT_REDIS_URL_FILE")
	}
	if file == "" {
		return u, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--redis-url-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
