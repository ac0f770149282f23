package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
)

// memoryTests pin down, beyond core.MemoryStore's documentation:
//
//   - Memory returns a record as created, sealed key byte for byte (nil
//     stays nil: a plaintext store); Memories lists one agent's records
//     in one project by user id, and no other project's or agent's.
//   - Memories pages by user id: after a user id (listed or not), at most
//     limit, limit 0 listing all; a negative limit is CodeValidation.
//   - UpdateMemory changes only the cap, usage and last use.
//   - MemoriesUnusedSince lists records last used strictly before t.
//   - A second record for the same (project, agent, user), or one reusing
//     an image, is CodeConflict; empty ids are CodeValidation.
var memoryTests = []struct {
	name string
	fn   func(t *testing.T, s core.MemoryStore)
}{
	{"MemoryRoundTrip", testMemoryRoundTrip},
	{"MemoryErrors", testMemoryErrors},
	{"MemoriesPaged", testMemoriesPaged},
	{"MemoriesUnusedSince", testMemoriesUnusedSince},
}

func runMemoryTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range memoryTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func memory(project, agent, user string, used time.Time) *core.Memory {
	return &core.Memory{ProjectID: project, AgentID: agent, UserID: user, Image: project + "-" + agent + "-" + user,
		SealedKey: []byte("\x01sealed\x00key"), CapBytes: 100 << 20, CreatedAt: base, LastUsedAt: used}
}

func testMemoryRoundTrip(t *testing.T, s core.MemoryStore) {
	ctx := t.Context()
	plain := memory("p1", "a1", "alice", base)
	plain.SealedKey = nil
	ms := []*core.Memory{memory("p1", "a1", "bob", base), plain, memory("p1", "a2", "alice", base), memory("p2", "a1", "alice", base)}
	for _, m := range ms {
		if err := s.CreateMemory(ctx, m); err != nil {
			t.Fatalf("CreateMemory(%s/%s/%s) = %v", m.ProjectID, m.AgentID, m.UserID, err)
		}
	}
	got, err := s.Memory(ctx, "p1", "a1", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ms[0], got); d != "" {
		t.Errorf("Memory(p1, a1, bob) differs (-created +got):\n%s", d)
	}
	list, err := s.Memories(ctx, "p1", "a1", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]*core.Memory{plain, ms[0]}, list); d != "" {
		t.Errorf("Memories(p1, a1) differs (-want +got):\n%s", d)
	}
	upd := *ms[0]
	upd.CapBytes, upd.UsedBytes, upd.Files, upd.LastUsedAt = 200<<20, 12345, 7, base.Add(time.Hour)
	upd.Image, upd.SealedKey = "ignored", []byte("ignored") // not changed by UpdateMemory
	if err := s.UpdateMemory(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Memory(ctx, "p1", "a1", "bob")
	want := *ms[0]
	want.CapBytes, want.UsedBytes, want.Files, want.LastUsedAt = 200<<20, 12345, 7, base.Add(time.Hour)
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("after UpdateMemory (-want +got):\n%s", d)
	}
	if err := s.DeleteMemory(ctx, "p1", "a1", "bob"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Memory(ctx, "p1", "a1", "bob")
	checkNotFound(t, "Memory after DeleteMemory", err)
	checkNotFound(t, "DeleteMemory again", s.DeleteMemory(ctx, "p1", "a1", "bob"))
	checkNotFound(t, "UpdateMemory of a deleted record", s.UpdateMemory(ctx, &upd))
	if list, _ := s.Memories(ctx, "p1", "nobody", "", 0); len(list) != 0 {
		t.Errorf("Memories of an agent without any = %d records", len(list))
	}
}

func testMemoryErrors(t *testing.T, s core.MemoryStore) {
	ctx := t.Context()
	checkCode(t, "CreateMemory without a user", s.CreateMemory(ctx, memory("p1", "a1", "", base)), core.CodeValidation)
	noCap := memory("p1", "a1", "u", base)
	noCap.CapBytes = 0
	checkCode(t, "CreateMemory without a cap", s.CreateMemory(ctx, noCap), core.CodeValidation)
	if err := s.CreateMemory(ctx, memory("p1", "a1", "u", base)); err != nil {
		t.Fatal(err)
	}
	again := memory("p1", "a1", "u", base)
	again.Image = "other"
	checkCode(t, "CreateMemory of an existing user", s.CreateMemory(ctx, again), core.CodeConflict)
	sameImage := memory("p1", "a1", "v", base)
	sameImage.Image = "p1-a1-u"
	checkCode(t, "CreateMemory reusing an image", s.CreateMemory(ctx, sameImage), core.CodeConflict)
}

func testMemoriesUnusedSince(t *testing.T, s core.MemoryStore) {
	ctx := t.Context()
	for i, u := range []string{"u0", "u1", "u2"} {
		if err := s.CreateMemory(ctx, memory("p1", "a1", u, base.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.MemoriesUnusedSince(ctx, base.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UserID != "u0" {
		t.Errorf("MemoriesUnusedSince(base+1h) = %d records, want only u0 (strictly before)", len(got))
	}
	got, _ = s.MemoriesUnusedSince(ctx, base.Add(3*time.Hour), 2)
	if len(got) != 2 || got[0].UserID != "u0" || got[1].UserID != "u1" {
		t.Errorf("MemoriesUnusedSince(base+3h, limit 2) = %v, want u0 then u1", got)
	}
}

func testMemoriesPaged(t *testing.T, s core.MemoryStore) {
	ctx := t.Context()
	var users []string
	for i := range 7 {
		u := fmt.Sprintf("user%02d", i)
		users = append(users, u)
		// Created in reverse, and beside another agent's and project's.
		for _, m := range []*core.Memory{memory("p1", "a1", fmt.Sprintf("user%02d", 6-i), base),
			memory("p1", "a2", u, base), memory("p2", "a1", u, base)} {
			if err := s.CreateMemory(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	userIDs := func(ms []*core.Memory) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.UserID)
		}
		return out
	}
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, users},
		{"", 3, users[:3]},
		{"user02", 3, users[3:6]},
		{"user05", 3, users[6:]},
		{"user06", 3, []string{}},
		{"user02x", 2, users[3:5]}, // not a user: the page starts after its place
		{"", 100, users},
		{"a", 1, users[:1]},
		{"zzz", 0, []string{}},
	}
	for _, tt := range tests {
		got, err := s.Memories(ctx, "p1", "a1", tt.after, tt.limit)
		if err != nil {
			t.Fatalf("Memories(p1, a1, %q, %d) = %v", tt.after, tt.limit, err)
		}
		if d := cmp.Diff(tt.want, userIDs(got)); d != "" {
			t.Errorf("Memories(p1, a1, %q, %d) (-want +got):\n%s", tt.after, tt.limit, d)
		}
	}
	_, err := s.Memories(ctx, "p1", "a1", "", -1)
	checkCode(t, "Memories with limit -1", err, core.CodeValidation)
}
