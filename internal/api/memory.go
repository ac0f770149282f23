package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/memory"
)

// Persistent memory: admins of an agent's project list its users'
// stores (size, files, last use), export one as a tar archive, and
// delete one (right to erasure). No route reads or changes a store while
// a run holds it: export and delete wait for the run.

// PersistentMemory is agents' persistent memory (internal/memory's
// Manager, or the server's MemoryStores around it): runs Acquire a store;
// the admin routes List, Export and Delete.
type PersistentMemory interface {
	Acquire(ctx context.Context, k memory.Key, capMB int) (*memory.Lease, error)
	// List lists an agent's stores by user id: those after afterUser,
	// at most limit (0: all).
	List(ctx context.Context, project, agent, afterUser string, limit int) ([]*core.Memory, error)
	Export(ctx context.Context, k memory.Key, w io.Writer) error
	Delete(ctx context.Context, k memory.Key) error
}

// memoryHandlers serve the memory routes (memory.go).
type memoryHandlers struct {
	*base
	mem PersistentMemory // nil: the routes answer 404
}

func memoryRes(r *http.Request) string {
	return "agent/" + r.PathValue("agent_id") + "/memory/" + r.PathValue("user_id")
}

// memoryRoutes are the memory routes, for routeTable.
func (a *API) memoryRoutes(v1 string) []route {
	return []route{
		{"GET", v1 + "/agents/{agent_id}/memory", adminRule, true, audited("memory.list", auditRead, pathRes("agent/", "agent_id")), a.memory.listMemory},
		{"GET", v1 + "/agents/{agent_id}/memory/{user_id}/export", adminRule, true, audited("memory.export", auditStream, memoryRes), a.memory.exportMemory},
		{"DELETE", v1 + "/agents/{agent_id}/memory/{user_id}", adminRule, true, audited("memory.delete", auditChange, memoryRes), a.memory.deleteMemory},
	}
}

func (h *memoryHandlers) manager() (PersistentMemory, error) {
	if h.mem == nil {
		return nil, core.Errorf(core.CodeNotFound, "this server keeps no persistent memory")
	}
	return h.mem, nil
}

// memoryEntry is one store as the list shows it.
type memoryEntry struct {
	UserID     string `json:"user_id"`
	UsedBytes  int64  `json:"used_bytes"`
	Files      int64  `json:"files"`
	CapBytes   int64  `json:"cap_bytes"`
	CreatedAt  string `json:"created_at"`
	LastUsedAt string `json:"last_used_at"`
}

func (h *memoryHandlers) listMemory(w http.ResponseWriter, r *http.Request) error {
	mem, err := h.manager()
	if err != nil {
		return err
	}
	limit, c, err := cursorParams(r.URL.Query())
	if err != nil {
		return err
	}
	after := ""
	if c != "" {
		if after, err = decodeUserCursor(c); err != nil {
			return err
		}
	}
	d := agentOf(r)
	ms, err := mem.List(r.Context(), d.ProjectID, d.AgentID, after, limit+1)
	if err != nil {
		return err
	}
	body := map[string]any{"agent_id": d.AgentID}
	ms = pageOf(body, ms, limit, func(m *core.Memory) string { return encodeUserCursor(m.UserID) })
	out := make([]memoryEntry, 0, len(ms))
	for _, m := range ms {
		out = append(out, memoryEntry{UserID: m.UserID, UsedBytes: m.UsedBytes, Files: m.Files, CapBytes: m.CapBytes,
			CreatedAt: timestamp(m.CreatedAt), LastUsedAt: timestamp(m.LastUsedAt)})
	}
	body["memories"] = out
	h.writeData(w, r, http.StatusOK, body)
	return nil
}

// memoryKey is the store a request names, or a VALIDATION error.
func memoryKey(r *http.Request) (memory.Key, error) {
	d := agentOf(r)
	k := memory.Key{Project: d.ProjectID, Agent: d.AgentID, User: r.PathValue("user_id")}
	return k, k.Validate()
}

func notFoundMemory(err error, k memory.Key) error {
	if errors.Is(err, core.ErrNotFound) {
		return core.Errorf(core.CodeNotFound, "agent %s keeps no memory for user %s", k.Agent, quoteID(k.User))
	}
	return err
}

// tarWriter sends the headers with the first byte of the archive, so
// that an export that fails before it (unknown store, mount error)
// answers with an error envelope.
type tarWriter struct {
	w       http.ResponseWriter
	started bool
	n       int64
}

func (t *tarWriter) Write(p []byte) (int, error) {
	if !t.started {
		t.started = true
		t.w.Header().Set("Content-Type", "application/x-tar")
		t.w.Header().Set("Cache-Control", "no-store")
		t.w.Header().Set("Content-Disposition", `attachment; filename="memory.tar"`)
		t.w.WriteHeader(http.StatusOK)
	}
	n, err := t.w.Write(p)
	t.n += int64(n)
	return n, err
}

func (h *memoryHandlers) exportMemory(w http.ResponseWriter, r *http.Request) error {
	mem, err := h.manager()
	if err != nil {
		return err
	}
	k, err := memoryKey(r)
	if err != nil {
		return err
	}
	tw := &tarWriter{w: w}
	err = mem.Export(r.Context(), k, tw)
	noteAudit(r, "bytes", strconv.FormatInt(tw.n, 10))
	if err != nil && !tw.started {
		return notFoundMemory(err, k)
	}
	if err != nil {
		// Headers are out: the client sees a short archive; the log and
		// the audit record say why.
		h.log.Error("memory export stopped", "request_id", requestID(r), "agent_id", k.Agent, "bytes", tw.n, "err", err)
		noteStatus(r, http.StatusInternalServerError)
	}
	return nil
}

func (h *memoryHandlers) deleteMemory(w http.ResponseWriter, r *http.Request) error {
	mem, err := h.manager()
	if err != nil {
		return err
	}
	k, err := memoryKey(r)
	if err != nil {
		return err
	}
	if err := mem.Delete(r.Context(), k); err != nil {
		return notFoundMemory(err, k)
	}
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, AgentID: k.Agent, Message: "persistent memory deleted"})
	h.writeData(w, r, http.StatusOK, map[string]any{"agent_id": k.Agent, "user_id": k.User, "deleted": true})
	return nil
}
