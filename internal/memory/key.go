package memory

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

// Key names one store: the memory one agent of one project keeps for one
// of its users.
type Key struct {
	Project, Agent, User string
}

// MaxUserID is the longest user id, in bytes, a store can belong to.
const MaxUserID = 256

// Validate checks that k can name a store. Every part must be 1 to
// MaxUserID bytes of UTF-8 text without control characters; the user id
// is chosen by the client, and only ever reaches the disk through Name.
func (k Key) Validate() error {
	for _, p := range []struct{ field, v string }{{"project_id", k.Project}, {"agent_id", k.Agent}, {"user_id", k.User}} {
		if p.v == "" || len(p.v) > MaxUserID {
			return &core.Error{Code: core.CodeValidation, Field: p.field,
				Message: fmt.Sprintf("%s must be 1 to %d bytes to open persistent memory", p.field, MaxUserID)}
		}
		if !utf8.ValidString(p.v) {
			return &core.Error{Code: core.CodeValidation, Field: p.field, Message: p.field + " must be valid UTF-8"}
		}
		for _, r := range p.v {
			if unicode.IsControl(r) {
				return &core.Error{Code: core.CodeValidation, Field: p.field, Message: p.field + " must not contain control characters"}
			}
		}
	}
	return nil
}

// Name is the store's directory name under the memory directory: the hex
// SHA-256 of its three parts, each prefixed with its length (so that no
// two keys give the same input). It is 64 characters of [0-9a-f] whatever
// the user id holds: no separator, no dot, no way out of the directory,
// and it does not reveal the user id on the disk.
func (k Key) Name() string {
	h := sha256.New()
	h.Write([]byte("runagent memory v1\x00"))
	for _, p := range []string{k.Project, k.Agent, k.User} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// additionalData binds a sealed key to its store: a key moved to another
// store's row does not open.
func (k Key) additionalData(image string) []byte {
	return core.MemoryKeyAD(k.Project, k.Agent, k.User, image)
}

func (k Key) String() string { return fmt.Sprintf("agent %s user %q", k.Agent, k.User) }
