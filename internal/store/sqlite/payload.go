package sqlite

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Invocation payloads (inputs, output, logs, error message) are sealed by
// the DB's Sealer when it has one: the TEXT column then holds
// sealedPrefix + base64(ciphertext), bound by AAD to the column and the
// invocation id. Values written before a sealer was set stay readable as
// they are.
const sealedPrefix = "sealed:v1:"

var errSealedNoKeyring = errors.New("the value is encrypted and this store has no keyring")

func payloadAAD(column, id string) []byte {
	return []byte("invocations\x00" + column + "\x00" + id)
}

// sealText returns s as stored in column of invocation id. An empty
// string stays empty: sealing it would hide nothing (a ciphertext's size
// shows its plaintext's) and cost a random nonce per value.
func (db *DB) sealText(column, id, s string) (string, error) {
	if db.sealer == nil || s == "" {
		return s, nil
	}
	ct, err := db.sealer.Seal([]byte(s), payloadAAD(column, id))
	if err != nil {
		return "", fmt.Errorf("seal %s of invocation %q: %w", column, id, err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(ct), nil
}

// sealJSON is sealText for a nullable raw JSON column (nil is NULL).
func (db *DB) sealJSON(column, id string, m json.RawMessage) (any, error) {
	if m == nil {
		return nil, nil
	}
	return db.sealText(column, id, string(m))
}

// openText is the inverse of sealText.
func (db *DB) openText(column, id, s string) (string, error) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return s, nil
	}
	if db.sealer == nil {
		return "", fmt.Errorf("%s of invocation %q: %w", column, id, errSealedNoKeyring)
	}
	ct, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("%s of invocation %q: malformed sealed value", column, id)
	}
	pt, err := db.sealer.Open(ct, payloadAAD(column, id))
	if err != nil {
		return "", fmt.Errorf("open %s of invocation %q: %w", column, id, err)
	}
	return string(pt), nil
}

// openJSON is openText for a nullable raw JSON column.
func (db *DB) openJSON(column, id string, s sql.NullString) (json.RawMessage, error) {
	if !s.Valid {
		return nil, nil
	}
	v, err := db.openText(column, id, s.String)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(v), nil
}
