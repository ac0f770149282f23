package core

import (
	"context"
	"encoding/binary"
	"time"
)

// Memory is the record of one persistent-memory store: the files an
// agent keeps for one of its users between runs (issue 17). The files
// live in a file-system image on the node; the record says where, and
// holds the image's encryption key sealed with the keyring.
type Memory struct {
	ProjectID string `json:"project_id"`
	AgentID   string `json:"agent_id"`
	UserID    string `json:"user_id"`
	// Image names the store's image under the memory directory.
	Image string `json:"-"`
	// SealedKey is the image's encryption key sealed by the keyring, or
	// nil for a store the operator accepted unencrypted. It never leaves
	// the server.
	SealedKey []byte `json:"-"`
	// CapBytes is the image's size: what the agent may keep.
	CapBytes int64 `json:"cap_bytes"`
	// UsedBytes and Files are what the store held when it was last
	// released.
	UsedBytes  int64     `json:"used_bytes"`
	Files      int64     `json:"files"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// MemoryStore keeps the records of persistent-memory stores, one per
// (project, agent, user).
type MemoryStore interface {
	// CreateMemory inserts m; a record for the same (project, agent,
	// user) is CodeConflict, empty ids or image CodeValidation.
	CreateMemory(ctx context.Context, m *Memory) error
	// Memory returns one record, or an error wrapping ErrNotFound.
	Memory(ctx context.Context, projectID, agentID, userID string) (*Memory, error)
	// Memories lists an agent's records in a project, ordered by user id
	// (in the store's order of text): those after afterUser ("": from the first), at most
	// limit of them (0: all; capped by the store as other listings are).
	// A negative limit is CodeValidation.
	Memories(ctx context.Context, projectID, agentID, afterUser string, limit int) ([]*Memory, error)
	// UpdateMemory records m's CapBytes, UsedBytes, Files and
	// LastUsedAt; an unknown record wraps ErrNotFound.
	UpdateMemory(ctx context.Context, m *Memory) error
	// DeleteMemory deletes one record, sealed key included; an unknown
	// record wraps ErrNotFound.
	DeleteMemory(ctx context.Context, projectID, agentID, userID string) error
	// MemoriesUnusedSince lists the records last used before t, oldest
	// first, at most limit (0: 100).
	MemoriesUnusedSince(ctx context.Context, t time.Time, limit int) ([]*Memory, error)
}

// MemoryKeyAD is the associated data a persistent-memory store's key is
// sealed with: the store's identity (project, agent, user) and its image,
// each prefixed with its length, so that a sealed key opens for its own
// store only. The memory manager seals with it and stores re-seal with it.
func MemoryKeyAD(project, agent, user, image string) []byte {
	b := []byte("memories\x00sealed_key\x00")
	for _, p := range []string{project, agent, user, image} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}
