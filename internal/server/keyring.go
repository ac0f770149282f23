package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/runagent/runagent/internal/keyring"
)

// Environment variables naming the master key. The key itself (as a key
// file holds it: 32 bytes in base64) may be given in $MasterKeyEnv, and a
// passphrase in $MasterPassphraseEnv, as a container platform passes a
// secret to every node; never as a flag: the process list would show it.
const (
	MasterKeyEnv            = "RUNAGENT_MASTER_KEY"
	MasterKeyFileEnv        = "RUNAGENT_MASTER_KEY_FILE"
	MasterPassphraseEnv     = "RUNAGENT_MASTER_PASSPHRASE"
	MasterPassphraseFileEnv = "RUNAGENT_MASTER_PASSPHRASE_FILE"
)

// AuditKeyPurpose names the keyring's MAC key of the audit trail (HMACs
// of sensitive values, purge checkpoint signatures).
const AuditKeyPurpose = "audit"

// OIDCStateKeyPurpose names the keyring's key that seals the state
// cookies of console sign-ins through OIDC issuers (oidc.SignIn).
const OIDCStateKeyPurpose = "console oidc state"

// AuditJournalName is the audit trail's journal in the data directory:
// records are durable there before their requests are answered, and
// indexed into the store behind (see internal/audit).
const AuditJournalName = "audit.journal"

// AuditJournal is the path of the audit journal of the data directory dir.
func AuditJournal(dir string) string { return filepath.Join(dir, AuditJournalName) }

// MasterKeyName is the master key file in the data directory when no
// other is named.
const MasterKeyName = "master.key"

// KeyringConfig says where the master key comes from: a key file (by
// default <data dir>/master.key, generated at the first start) or a
// passphrase (Argon2id, its salt kept in the database).
type KeyringConfig struct {
	// MasterKey is the key itself in base64, from the environment.
	MasterKey            string
	MasterKeyFile        string
	MasterPassphraseFile string
	// MasterPassphrase is the passphrase itself, from the environment.
	MasterPassphrase string
	// Generate creates the key file when it is missing and the database
	// has no keyring yet (the server's first start); without it a
	// missing file is an error (offline tools).
	Generate bool
	// Optional lets offline tools open a database that has no keyring yet
	// (nothing in it is encrypted): OpenKeyring then returns nil.
	Optional bool
}

// errNoKeyring: an Optional keyring that does not exist.
var errNoKeyring = errors.New("no keyring")

// KeyringFromEnv fills in what cfg leaves empty from the environment.
func KeyringFromEnv(cfg KeyringConfig) KeyringConfig {
	if cfg.MasterKey == "" {
		cfg.MasterKey = os.Getenv(MasterKeyEnv)
	}
	if cfg.MasterKeyFile == "" {
		cfg.MasterKeyFile = os.Getenv(MasterKeyFileEnv)
	}
	if cfg.MasterPassphraseFile == "" {
		cfg.MasterPassphraseFile = os.Getenv(MasterPassphraseFileEnv)
	}
	if cfg.MasterPassphrase == "" {
		cfg.MasterPassphrase = os.Getenv(MasterPassphraseEnv)
	}
	return cfg
}

// OpenKeyring opens the keyring of db (initialising it on a new database)
// and makes db seal with it. console gets the note about a generated key.
func OpenKeyring(ctx context.Context, db Store, dataDir string, cfg KeyringConfig, console io.Writer, log *slog.Logger) (*keyring.Keyring, error) {
	master, err := masterKey(ctx, db, dataDir, cfg, console, log)
	if errors.Is(err, errNoKeyring) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kr, err := keyring.Open(ctx, db, master)
	clear(master.Key)
	clear(master.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("open the keyring: %w", err)
	}
	db.SetSealer(kr)
	return kr, nil
}

func masterKey(ctx context.Context, db Store, dataDir string, cfg KeyringConfig, console io.Writer, log *slog.Logger) (keyring.Master, error) {
	if cfg.MasterKey != "" {
		if cfg.MasterKeyFile != "" || cfg.MasterPassphrase != "" || cfg.MasterPassphraseFile != "" {
			return keyring.Master{}, fmt.Errorf("master key: $%s is set: give the master key one way only (unset it, or drop the key file or passphrase)", MasterKeyEnv)
		}
		key, err := keyring.ParseKey([]byte(cfg.MasterKey))
		if err != nil {
			return keyring.Master{}, fmt.Errorf("master key in $%s: %w (want the contents of a key file, 32 bytes in base64: head -c 32 /dev/urandom | base64)", MasterKeyEnv, err)
		}
		return keyring.Master{Key: key}, nil
	}
	if cfg.MasterPassphrase != "" || cfg.MasterPassphraseFile != "" {
		if cfg.MasterKeyFile != "" {
			return keyring.Master{}, errors.New("master key: give a key file or a passphrase, not both")
		}
		pass := cfg.MasterPassphrase
		if cfg.MasterPassphraseFile != "" {
			b, err := os.ReadFile(cfg.MasterPassphraseFile)
			if err != nil {
				return keyring.Master{}, fmt.Errorf("master passphrase file: %w", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		if len(pass) < 12 {
			return keyring.Master{}, errors.New("master passphrase: at least 12 characters are required")
		}
		return keyring.Master{Passphrase: []byte(pass)}, nil
	}
	path := cfg.MasterKeyFile
	if path == "" {
		path = filepath.Join(dataDir, MasterKeyName)
	}
	key, err := keyring.ReadKeyFile(path)
	if err == nil {
		return keyring.Master{Key: key}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return keyring.Master{}, fmt.Errorf("master key: %w", err)
	}
	st, lerr := db.LoadKeyring(ctx)
	if lerr != nil {
		return keyring.Master{}, fmt.Errorf("master key: read the keyring: %w", lerr)
	}
	if st.Version != 0 {
		return keyring.Master{}, fmt.Errorf("master key file %s does not exist, but this database's data is encrypted with master key %s: restore the file from your backup, or name it with --master-key-file / $%s", path, st.MasterKeyID, MasterKeyFileEnv)
	}
	if cfg.Optional {
		return keyring.Master{}, errNoKeyring
	}
	if !cfg.Generate {
		return keyring.Master{}, fmt.Errorf("master key file %s does not exist (the server creates it at its first start)", path)
	}
	if err := keyring.GenerateKeyFile(path); err != nil {
		return keyring.Master{}, fmt.Errorf("generate the master key: %w", err)
	}
	log.Warn("generated a new master key: back it up; without it the encrypted data cannot be read", "file", path)
	if console != nil {
		fmt.Fprintf(console, `
  A new master key encrypts this server's secrets and stored payloads:
    %s
  BACK IT UP NOW, somewhere other than this machine. Without it the
  encrypted data is lost; with it and a copy of the database, anyone can
  read it. Keep it away from database backups (--master-key-file can move it).

`, path)
	}
	key, err = keyring.ReadKeyFile(path)
	if err != nil {
		return keyring.Master{}, fmt.Errorf("master key: %w", err)
	}
	return keyring.Master{Key: key}, nil
}
