package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// Run runs the conformance suite. open must return a new, empty store for
// the given (sub)test and arrange for it to be closed when that test ends,
// e.g. with t.Cleanup. The store must also implement core.IdentityStore
// and core.EventStore; the identity and event tests fail otherwise (see
// identityTests, lifecycleTests and eventTests for what they pin down).
//
// Beyond the documentation of core.Store, the suite pins down these
// semantics so that every store behaves the same:
//
//   - Times come back in UTC and equal to what was stored, at least to the
//     microsecond (the suite only uses microsecond times).
//   - json.RawMessage fields come back byte for byte; nil stays nil and an
//     empty message stays empty and non-nil.
//   - Strings come back unchanged. A string a store cannot represent (NUL
//     bytes, invalid UTF-8: PostgreSQL text holds neither) must be refused
//     with an error, never altered.
//   - PutAgentVersion of an existing (AgentID, Hash) leaves the stored
//     version, package included, unchanged.
//   - CreateInvocation fills in an empty Status (running), a zero CreatedAt
//     and an empty ProjectID (DefaultProject), refuses another status or an
//     empty ID (CodeValidation) and a duplicate ID (CodeConflict).
//   - FinishInvocation needs a terminal Status (CodeValidation), fills in a
//     nil CompletedAt, and fails for an unknown invocation (ErrNotFound) or
//     one already finished (CodeConflict).
//   - Invocations orders by CreatedAt descending; Limit 0 means 50, limits
//     are capped at 1000, and a negative Limit or Offset or an unknown
//     Status is a CodeValidation error.
//   - InvocationStats.ByStatus has an entry for every status, zero included.
//   - DeleteInvocationsBefore deletes invocations created strictly before t.
//   - FailNodeInvocations sets ErrorCode to CodeInternal and CompletedAt,
//     and touches only the invocations of the node it names (and with
//     unowned those of no node).
func Run(t *testing.T, open func(t *testing.T) core.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s core.Store)
	}{
		{"Ping", testPing},
		{"AgentVersions", testAgentVersions},
		{"AgentVersionKeepsExisting", testAgentVersionKeepsExisting},
		{"Agents", testAgents},
		{"NotFound", testNotFound},
		{"InvocationRoundTrip", testInvocationRoundTrip},
		{"CreateInvocationDefaults", testCreateInvocationDefaults},
		{"CreateInvocationErrors", testCreateInvocationErrors},
		{"FinishInvocationErrors", testFinishInvocationErrors},
		{"Invocations", testInvocations},
		{"InvocationsLimits", testInvocationsLimits},
		{"InvocationsBadFilter", testInvocationsBadFilter},
		{"InvocationsFilters", testInvocationsFilters},
		{"InvocationsCursor", testInvocationsCursor},
		{"InvocationStats", testInvocationStats},
		{"InvocationStatsEmpty", testInvocationStatsEmpty},
		{"DeleteInvocationsBefore", testDeleteInvocationsBefore},
		{"FailNodeInvocations", testFailNodeInvocations},
		{"SetInvocationLogs", testSetInvocationLogs},
		{"ConcurrentWriters", testConcurrentWriters},
		{"HostileStrings", testHostileStrings},
		{"UnrepresentableStrings", testUnrepresentableStrings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
	for _, tt := range versionTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
	for _, tt := range slices.Concat(identityTests, lifecycleTests) {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			is, ok := s.(identityStore)
			if !ok {
				t.Fatalf("%T does not implement core.IdentityStore", s)
			}
			tt.fn(t, is)
		})
	}
	runEventTests(t, open)
	runSecretTests(t, open)
	runBuildTests(t, open)
	runMemoryTests(t, open)
	runWebhookTests(t, open)
	runNodeTests(t, open)
	runSessionTests(t, open)
}

// base is the suite's reference time, with microsecond precision.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.UTC)

func testPing(t *testing.T, s core.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v, want nil", err)
	}
}

func config(agentID, name string) core.AgentConfig {
	return core.AgentConfig{
		AgentName:   name,
		Description: "answers questions",
		Framework:   "langgraph",
		Version:     "1.2.3",
		AgentID:     agentID,
		Entrypoints: []core.Entrypoint{
			{Tag: "main", Kind: core.KindPython, File: "agent.py", Module: "app.run"},
			{
				Tag: "main_stream", Kind: core.KindPython, File: "agent.py", Module: "app.stream",
				InputSchema: json.RawMessage(`{"type":"object"}`),
			},
			{Tag: "hook", Kind: core.KindWebhook, WebhookURL: "https://example.com/x", Method: "POST", TimeoutSeconds: 2.5},
		},
		EnvVars:           map[string]string{"MODEL": "small"},
		AuthType:          core.AuthAPIKey,
		PersistentFolders: []string{"data"},
		Resources:         core.Resources{CPU: 0.5, MemoryMB: 256, TimeoutSeconds: 30},
		Network: core.NetworkPolicy{
			Mode:  core.NetworkEgress,
			Allow: []core.EgressRule{{Host: "*.example.com", Ports: []int{443}}},
		},
	}
}

func version(agentID, name, hash string, pkg []byte) *core.AgentVersion {
	return &core.AgentVersion{
		AgentID:   agentID,
		Hash:      hash,
		Config:    config(agentID, name),
		Package:   pkg,
		Size:      int64(len(pkg)),
		CreatedAt: base,
	}
}

func mustPut(t *testing.T, s core.Store, v *core.AgentVersion, wantCreated bool) {
	t.Helper()
	created, err := s.PutAgentVersion(t.Context(), v)
	if err != nil {
		t.Fatalf("PutAgentVersion(%q, %q) = %v", v.AgentID, v.Hash, err)
	}
	if created != wantCreated {
		t.Fatalf("PutAgentVersion(%q, %q) created = %v, want %v", v.AgentID, v.Hash, created, wantCreated)
	}
}

func mustAgent(t *testing.T, s core.Store, id string) *core.Agent {
	t.Helper()
	a, err := s.Agent(t.Context(), id)
	if err != nil {
		t.Fatalf("Agent(%q) = %v", id, err)
	}
	checkUTC(t, "Agent.CreatedAt", a.CreatedAt)
	checkUTC(t, "Agent.UpdatedAt", a.UpdatedAt)
	return a
}

func mustVersion(t *testing.T, s core.Store, agentID, hash string) *core.AgentVersion {
	t.Helper()
	v, err := s.AgentVersion(t.Context(), agentID, hash)
	if err != nil {
		t.Fatalf("AgentVersion(%q, %q) = %v", agentID, hash, err)
	}
	checkUTC(t, "AgentVersion.CreatedAt", v.CreatedAt)
	return v
}

func checkUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() {
		t.Errorf("%s is zero", what)
	}
	if tm.Location() != time.UTC {
		t.Errorf("%s = %v in %v, want UTC", what, tm, tm.Location())
	}
}

func testAgentVersions(t *testing.T, s core.Store) {
	ctx := t.Context()
	v1 := version("agent-1", "Helper", "sha256:aaaa", []byte("package one\x00\xff binary"))
	mustPut(t, s, v1, true)

	if got := mustVersion(t, s, "agent-1", "sha256:aaaa"); !cmp.Equal(got, v1, exactBytes) {
		t.Errorf("AgentVersion after first put (-got +want):\n%s", cmp.Diff(got, v1, exactBytes))
	}
	a := mustAgent(t, s, "agent-1")
	if a.ID != "agent-1" || a.Name != "Helper" || a.CurrentVersion != "sha256:aaaa" {
		t.Errorf("Agent = %+v, want id agent-1, name Helper, current sha256:aaaa", a)
	}
	if a.UpdatedAt.Before(a.CreatedAt) {
		t.Errorf("Agent.UpdatedAt = %v, before CreatedAt %v", a.UpdatedAt, a.CreatedAt)
	}
	created := a.CreatedAt

	// The same version again: nothing new.
	mustPut(t, s, version("agent-1", "Helper", "sha256:aaaa", []byte("package one\x00\xff binary")), false)

	// A second version becomes current, under its config's name.
	v2 := version("agent-1", "Helper II", "sha256:bbbb", []byte("package two"))
	v2.CreatedAt = base.Add(time.Hour)
	mustPut(t, s, v2, true)
	a = mustAgent(t, s, "agent-1")
	if a.CurrentVersion != "sha256:bbbb" || a.Name != "Helper II" {
		t.Errorf("Agent after second version = %+v, want current sha256:bbbb, name Helper II", a)
	}
	if !a.CreatedAt.Equal(created) {
		t.Errorf("Agent.CreatedAt = %v after second version, want unchanged %v", a.CreatedAt, created)
	}
	if got := mustVersion(t, s, "agent-1", "sha256:bbbb"); !cmp.Equal(got, v2, exactBytes) {
		t.Errorf("AgentVersion(sha256:bbbb) (-got +want):\n%s", cmp.Diff(got, v2, exactBytes))
	}

	// Putting the first version again switches back to it.
	mustPut(t, s, version("agent-1", "Helper", "sha256:aaaa", []byte("package one\x00\xff binary")), false)
	if a := mustAgent(t, s, "agent-1"); a.CurrentVersion != "sha256:aaaa" || a.Name != "Helper" {
		t.Errorf("Agent after rollback = %+v, want current sha256:aaaa, name Helper", a)
	}
	// Both versions are still there.
	if got := mustVersion(t, s, "agent-1", "sha256:bbbb"); !cmp.Equal(got, v2, exactBytes) {
		t.Errorf("AgentVersion(sha256:bbbb) after rollback (-got +want):\n%s", cmp.Diff(got, v2, exactBytes))
	}

	// The same hash under another agent is another version.
	mustPut(t, s, version("agent-2", "Other", "sha256:aaaa", []byte("other")), true)
	if got := mustVersion(t, s, "agent-1", "sha256:aaaa"); string(got.Package) != "package one\x00\xff binary" {
		t.Errorf("agent-1 package = %q after agent-2 put the same hash", got.Package)
	}

	// An empty package is kept empty.
	mustPut(t, s, version("agent-3", "Empty", "sha256:e3b0", []byte{}), true)
	if got := mustVersion(t, s, "agent-3", "sha256:e3b0"); got.Package == nil || len(got.Package) != 0 || got.Size != 0 {
		t.Errorf("empty package = %#v (size %d), want empty, non-nil, size 0", got.Package, got.Size)
	}

	if _, err := s.PutAgentVersion(ctx, &core.AgentVersion{Hash: "sha256:x"}); err == nil {
		t.Errorf("PutAgentVersion without agent id = nil error, want error")
	}
}

func testAgentVersionKeepsExisting(t *testing.T, s core.Store) {
	orig := version("agent-1", "Helper", "sha256:aaaa", []byte("original bytes"))
	mustPut(t, s, orig, true)
	// A second put of the same hash must not rewrite the stored version.
	other := version("agent-1", "Helper", "sha256:aaaa", []byte("different bytes!"))
	other.Config.Description = "changed"
	other.CreatedAt = base.Add(time.Hour)
	mustPut(t, s, other, false)
	if got := mustVersion(t, s, "agent-1", "sha256:aaaa"); !cmp.Equal(got, orig, exactBytes) {
		t.Errorf("AgentVersion after second put of the same hash (-got +want):\n%s", cmp.Diff(got, orig, exactBytes))
	}
}

func testAgents(t *testing.T, s core.Store) {
	got, err := s.Agents(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("Agents() on an empty store = %v, %v; want none", got, err)
	}
	for _, id := range []string{"charlie", "alpha", "bravo"} {
		mustPut(t, s, version(id, "name of "+id, "sha256:"+id, []byte(id)), true)
	}
	got, err = s.Agents(t.Context())
	if err != nil {
		t.Fatalf("Agents() = %v", err)
	}
	var ids []string
	for _, a := range got {
		ids = append(ids, a.ID)
		if a.Name != "name of "+a.ID || a.CurrentVersion != "sha256:"+a.ID {
			t.Errorf("Agents() item %+v, want name %q and current version %q", a, "name of "+a.ID, "sha256:"+a.ID)
		}
		checkUTC(t, "Agent.CreatedAt", a.CreatedAt)
	}
	if want := []string{"alpha", "bravo", "charlie"}; !cmp.Equal(ids, want) {
		t.Errorf("Agents() ids = %v, want %v", ids, want)
	}
}

func checkNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, core.ErrNotFound) {
		t.Errorf("%s = %v, want an error wrapping core.ErrNotFound", what, err)
	}
	if code := core.ErrorCode(err); code != core.CodeNotFound {
		t.Errorf("%s error code = %s, want %s", what, code, core.CodeNotFound)
	}
}

func testNotFound(t *testing.T, s core.Store) {
	ctx := t.Context()
	mustPut(t, s, version("agent-1", "Helper", "sha256:aaaa", []byte("x")), true)

	a, err := s.Agent(ctx, "missing")
	checkNotFound(t, "Agent(missing)", err)
	if a != nil {
		t.Errorf("Agent(missing) = %+v, want nil", a)
	}
	_, err = s.AgentVersion(ctx, "missing", "sha256:aaaa")
	checkNotFound(t, "AgentVersion(missing, sha256:aaaa)", err)
	_, err = s.AgentVersion(ctx, "agent-1", "sha256:missing")
	checkNotFound(t, "AgentVersion(agent-1, sha256:missing)", err)
	inv, err := s.Invocation(ctx, "missing")
	checkNotFound(t, "Invocation(missing)", err)
	if inv != nil {
		t.Errorf("Invocation(missing) = %+v, want nil", inv)
	}
	err = s.FinishInvocation(ctx, &core.Invocation{ID: "missing", Status: core.StatusCompleted})
	checkNotFound(t, "FinishInvocation(missing)", err)
}

// invocation returns a running invocation created at the given time.
func invocation(id, agentID string, created time.Time) *core.Invocation {
	return &core.Invocation{
		ID:            id,
		AgentID:       agentID,
		AgentVersion:  "sha256:aaaa",
		EntrypointTag: "main",
		Transport:     "rest",
		Status:        core.StatusRunning,
		Caller:        "203.0.113.7",
		InputArgs:     json.RawMessage(`[1,"a"]`),
		InputKwargs:   json.RawMessage(`{"k":"v"}`),
		CreatedAt:     created,
	}
}

// finished returns a copy of inv finished with status and duration.
func finished(inv *core.Invocation, status core.InvocationStatus, durationMS int64) *core.Invocation {
	f := *inv
	f.Status = status
	f.DurationMS = durationMS
	done := f.CreatedAt.Add(time.Duration(durationMS) * time.Millisecond)
	f.CompletedAt = &done
	switch status {
	case core.StatusCompleted:
		f.Output = json.RawMessage(`{"answer":42}`)
	default:
		f.ErrorCode = core.CodeAgentError
		f.ErrorMessage = "agent raised ValueError"
	}
	return &f
}

func mustCreate(t *testing.T, s core.Store, inv *core.Invocation) {
	t.Helper()
	if err := s.CreateInvocation(t.Context(), inv); err != nil {
		t.Fatalf("CreateInvocation(%q) = %v", inv.ID, err)
	}
}

func mustFinish(t *testing.T, s core.Store, inv *core.Invocation) {
	t.Helper()
	if err := s.FinishInvocation(t.Context(), inv); err != nil {
		t.Fatalf("FinishInvocation(%q, %s) = %v", inv.ID, inv.Status, err)
	}
}

func mustInvocation(t *testing.T, s core.Store, id string) *core.Invocation {
	t.Helper()
	inv, err := s.Invocation(t.Context(), id)
	if err != nil {
		t.Fatalf("Invocation(%q) = %v", id, err)
	}
	checkUTC(t, "Invocation.CreatedAt", inv.CreatedAt)
	if inv.CompletedAt != nil {
		checkUTC(t, "Invocation.CompletedAt", *inv.CompletedAt)
	}
	return inv
}

// exactBytes compares byte slices, json.RawMessage included, quickly (cmp
// would compare large ones element by element) and tells nil from empty.
var exactBytes = cmp.Comparer(func(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
})

// checkInvocation compares got and want field by field: cmp tells nil and
// empty RawMessages apart and compares times with Equal.
func checkInvocation(t *testing.T, what string, got, want *core.Invocation) {
	t.Helper()
	if diff := cmp.Diff(got, want, exactBytes); diff != "" {
		t.Errorf("%s (-got +want):\n%s", what, diff)
	}
}

func testInvocationRoundTrip(t *testing.T, s core.Store) {
	done := base.Add(1500 * time.Millisecond)
	tests := []struct {
		name   string
		create core.Invocation
		// finish turns the created invocation into its finished state.
		finish func(inv *core.Invocation)
	}{
		{
			name: "every field",
			create: core.Invocation{
				ID:            "inv-full",
				AgentID:       "agent-1",
				ProjectID:     "project-1",
				AgentVersion:  "sha256:0123456789abcdef",
				EntrypointTag: "main_stream",
				Streaming:     true,
				Transport:     "sse",
				Status:        core.StatusRunning,
				Caller:        "key:ops",
				UserID:        "user-42",
				NodeID:        "web-1",
				// Whitespace and key order are kept byte for byte.
				InputArgs:   json.RawMessage(`[ 1, "two" , {"three": 3.0} ]`),
				InputKwargs: json.RawMessage("{\"b\": 2,\n  \"a\": 1}"),
				CreatedAt:   base,
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusCompleted
				inv.Output = json.RawMessage(`[ "chunk 1", {"b":1, "a":2} ]`)
				inv.Chunks = 2
				inv.Logs = "starting\nstep 1\nstep 2\n"
				inv.CompletedAt = &done
				inv.DurationMS = 1500
			},
		},
		{
			name: "nil raw messages",
			create: core.Invocation{
				ID: "inv-nil", AgentID: "agent-1", Status: core.StatusRunning, CreatedAt: base,
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusFailed
				inv.ErrorCode = core.CodeAgentError
				inv.ErrorMessage = "ValueError: bad input"
				inv.Logs = "Traceback (most recent call last):\n..."
				inv.CompletedAt = &done
				inv.DurationMS = 7
			},
		},
		{
			name: "empty raw messages",
			create: core.Invocation{
				ID: "inv-empty", AgentID: "agent-1", Status: core.StatusRunning, CreatedAt: base,
				InputArgs: json.RawMessage{}, InputKwargs: json.RawMessage{},
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusCompleted
				inv.Output = json.RawMessage{}
				inv.CompletedAt = &done
			},
		},
		{
			name: "null output",
			create: core.Invocation{
				ID: "inv-null", AgentID: "agent-1", Status: core.StatusRunning, CreatedAt: base,
				InputArgs: json.RawMessage(`[]`), InputKwargs: json.RawMessage(`{}`),
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusTimeout
				inv.Output = json.RawMessage(`null`)
				inv.ErrorCode = core.CodeAgentTimeout
				inv.ErrorMessage = "deadline exceeded"
				inv.CompletedAt = &done
				inv.DurationMS = 30000
			},
		},
		{
			name: "large logs and output",
			create: core.Invocation{
				ID: "inv-large", AgentID: "agent-1", Status: core.StatusRunning, CreatedAt: base,
				InputArgs: json.RawMessage(`["` + strings.Repeat("i", 1<<16) + `"]`), InputKwargs: json.RawMessage(`{}`),
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusCompleted
				inv.Output = json.RawMessage(`"` + strings.Repeat("o", 1<<20) + `"`)
				inv.Logs = strings.Repeat("log line\n", 1<<17)
				inv.CompletedAt = &done
				inv.DurationMS = 12345
			},
		},
		{
			name: "cancelled stream with partial output",
			create: core.Invocation{
				ID: "inv-cancel", AgentID: "agent-2", EntrypointTag: "x_stream", Streaming: true,
				Transport: "websocket", Status: core.StatusRunning, CreatedAt: base.Add(-time.Microsecond),
				InputArgs: json.RawMessage(`["a"]`), InputKwargs: json.RawMessage(`{"n":1e3}`),
			},
			finish: func(inv *core.Invocation) {
				inv.Status = core.StatusCancelled
				inv.Output = json.RawMessage(`["partial"]`)
				inv.Chunks = 1
				inv.ErrorCode = core.CodeCancelled
				inv.ErrorMessage = "client went away"
				inv.CompletedAt = &done
				inv.DurationMS = 1
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.create
			mustCreate(t, s, &in)
			want := tt.create
			if want.ProjectID == "" {
				want.ProjectID = core.DefaultProject
			}
			checkInvocation(t, "Invocation after create", mustInvocation(t, s, want.ID), &want)

			fin := want
			tt.finish(&fin)
			mustFinish(t, s, &fin)
			got := mustInvocation(t, s, want.ID)
			checkInvocation(t, "Invocation after finish", got, &fin)
			// Spelled out, in case a comparison treats nil and empty alike.
			for _, f := range []struct {
				name      string
				got, want json.RawMessage
			}{
				{"InputArgs", got.InputArgs, fin.InputArgs},
				{"InputKwargs", got.InputKwargs, fin.InputKwargs},
				{"Output", got.Output, fin.Output},
			} {
				if (f.got == nil) != (f.want == nil) || string(f.got) != string(f.want) {
					t.Errorf("%s = %#v, want %#v", f.name, f.got, f.want)
				}
			}
		})
	}
}

func testCreateInvocationDefaults(t *testing.T, s core.Store) {
	before := time.Now()
	inv := &core.Invocation{ID: "inv-1", AgentID: "agent-1"}
	mustCreate(t, s, inv)
	if inv.Status != core.StatusRunning {
		t.Errorf("CreateInvocation set Status = %q, want %q", inv.Status, core.StatusRunning)
	}
	if inv.CreatedAt.Before(before.Add(-time.Second)) || inv.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreateInvocation set CreatedAt = %v, want about %v", inv.CreatedAt, before)
	}
	got := mustInvocation(t, s, "inv-1")
	if got.Status != core.StatusRunning || got.CreatedAt.Sub(inv.CreatedAt).Abs() > time.Microsecond {
		t.Errorf("Invocation = status %q created %v, want %q %v", got.Status, got.CreatedAt, core.StatusRunning, inv.CreatedAt)
	}
	if got.CompletedAt != nil {
		t.Errorf("running Invocation.CompletedAt = %v, want nil", got.CompletedAt)
	}

	fin := &core.Invocation{ID: "inv-1", Status: core.StatusCompleted, Output: json.RawMessage(`1`)}
	mustFinish(t, s, fin)
	if fin.CompletedAt == nil {
		t.Fatalf("FinishInvocation left CompletedAt nil, want it set")
	}
	got = mustInvocation(t, s, "inv-1")
	if got.CompletedAt == nil || got.CompletedAt.Sub(*fin.CompletedAt).Abs() > time.Microsecond {
		t.Errorf("Invocation.CompletedAt = %v, want %v", got.CompletedAt, fin.CompletedAt)
	}
	// Finishing records the terminal fields only.
	if got.AgentID != "agent-1" || got.Status != core.StatusCompleted || string(got.Output) != "1" {
		t.Errorf("Invocation after finish = agent %q status %q output %s, want agent-1 completed 1", got.AgentID, got.Status, got.Output)
	}
}

func checkCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error, want %s", what, code)
		return
	}
	if got := core.ErrorCode(err); got != code {
		t.Errorf("%s = %v (code %s), want code %s", what, err, got, code)
	}
}

func testCreateInvocationErrors(t *testing.T, s core.Store) {
	ctx := t.Context()
	checkCode(t, "CreateInvocation without id", s.CreateInvocation(ctx, invocation("", "agent-1", base)), core.CodeValidation)

	done := invocation("inv-done", "agent-1", base)
	done.Status = core.StatusCompleted
	checkCode(t, "CreateInvocation with status completed", s.CreateInvocation(ctx, done), core.CodeValidation)
	_, err := s.Invocation(ctx, "inv-done")
	checkNotFound(t, "Invocation of a refused create", err)

	mustCreate(t, s, invocation("inv-1", "agent-1", base))
	dup := invocation("inv-1", "agent-2", base.Add(time.Second))
	checkCode(t, "CreateInvocation with a duplicate id", s.CreateInvocation(ctx, dup), core.CodeConflict)
	if got := mustInvocation(t, s, "inv-1"); got.AgentID != "agent-1" {
		t.Errorf("duplicate create changed AgentID to %q", got.AgentID)
	}
}

func testFinishInvocationErrors(t *testing.T, s core.Store) {
	ctx := t.Context()
	inv := invocation("inv-1", "agent-1", base)
	mustCreate(t, s, inv)

	for _, status := range []core.InvocationStatus{core.StatusRunning, "", "done"} {
		f := finished(inv, core.StatusCompleted, 5)
		f.Status = status
		checkCode(t, fmt.Sprintf("FinishInvocation with status %q", status), s.FinishInvocation(ctx, f), core.CodeValidation)
	}
	if got := mustInvocation(t, s, "inv-1"); got.Status != core.StatusRunning {
		t.Errorf("Status after refused finishes = %q, want running", got.Status)
	}

	first := finished(inv, core.StatusCompleted, 5)
	mustFinish(t, s, first)
	second := finished(inv, core.StatusFailed, 9)
	checkCode(t, "FinishInvocation of a finished invocation", s.FinishInvocation(ctx, second), core.CodeConflict)
	checkInvocation(t, "Invocation after a second finish", mustInvocation(t, s, "inv-1"), first)
}

// listing is the fixture for the listing tests: ten invocations of two
// agents, one second apart, with ids in a different order than times.
func listing(t *testing.T, s core.Store) []*core.Invocation {
	t.Helper()
	var all []*core.Invocation
	for i := range 10 {
		agent := "agent-a"
		if i%2 == 1 {
			agent = "agent-b"
		}
		inv := invocation(fmt.Sprintf("inv-%02d", (i*7)%10), agent, base.Add(time.Duration(i)*time.Second))
		mustCreate(t, s, inv)
		switch i % 3 {
		case 0:
			inv = finished(inv, core.StatusCompleted, int64(i))
			mustFinish(t, s, inv)
		case 1:
			inv = finished(inv, core.StatusFailed, int64(i))
			mustFinish(t, s, inv)
		}
		all = append(all, inv)
	}
	// Newest first.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

func ids(invs []*core.Invocation) []string {
	out := []string{}
	for _, inv := range invs {
		out = append(out, inv.ID)
	}
	return out
}

func testInvocations(t *testing.T, s core.Store) {
	all := listing(t, s)
	match := func(keep func(*core.Invocation) bool) []*core.Invocation {
		var out []*core.Invocation
		for _, inv := range all {
			if keep(inv) {
				out = append(out, inv)
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    core.InvocationFilter
		want []*core.Invocation
	}{
		{"all", core.InvocationFilter{}, all},
		{"agent", core.InvocationFilter{AgentID: "agent-a"}, match(func(i *core.Invocation) bool { return i.AgentID == "agent-a" })},
		{"status", core.InvocationFilter{Status: core.StatusCompleted}, match(func(i *core.Invocation) bool { return i.Status == core.StatusCompleted })},
		{"running", core.InvocationFilter{Status: core.StatusRunning}, match(func(i *core.Invocation) bool { return i.Status == core.StatusRunning })},
		{"agent and status", core.InvocationFilter{AgentID: "agent-b", Status: core.StatusFailed},
			match(func(i *core.Invocation) bool { return i.AgentID == "agent-b" && i.Status == core.StatusFailed })},
		{"limit", core.InvocationFilter{Limit: 3}, all[:3]},
		{"limit and offset", core.InvocationFilter{Limit: 3, Offset: 3}, all[3:6]},
		{"last page", core.InvocationFilter{Limit: 3, Offset: 9}, all[9:]},
		{"offset past the end", core.InvocationFilter{Offset: 10}, nil},
		{"agent, limit and offset", core.InvocationFilter{AgentID: "agent-b", Limit: 2, Offset: 1},
			match(func(i *core.Invocation) bool { return i.AgentID == "agent-b" })[1:3]},
		{"unknown agent", core.InvocationFilter{AgentID: "agent-z"}, nil},
		{"status nobody has", core.InvocationFilter{Status: core.StatusTimeout}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Invocations(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Invocations(%+v) = %v", tt.f, err)
			}
			if !cmp.Equal(ids(got), ids(tt.want)) {
				t.Fatalf("Invocations(%+v) ids = %v, want %v", tt.f, ids(got), ids(tt.want))
			}
			if len(tt.want) == 0 {
				return // got is empty, and may be nil or not
			}
			if diff := cmp.Diff(got, tt.want, exactBytes); diff != "" {
				t.Errorf("Invocations(%+v) (-got +want):\n%s", tt.f, diff)
			}
		})
	}
}

func testInvocationsLimits(t *testing.T, s core.Store) {
	const n = 1003
	for i := range n {
		mustCreate(t, s, invocation(fmt.Sprintf("inv-%04d", i), "agent-1", base.Add(time.Duration(i)*time.Millisecond)))
	}
	tests := []struct {
		f                   core.InvocationFilter
		wantLen             int
		wantFirst, wantLast string
	}{
		{core.InvocationFilter{}, 50, "inv-1002", "inv-0953"},
		{core.InvocationFilter{Limit: 1}, 1, "inv-1002", "inv-1002"},
		{core.InvocationFilter{Limit: 1000}, 1000, "inv-1002", "inv-0003"},
		{core.InvocationFilter{Limit: 1001}, 1000, "inv-1002", "inv-0003"},
		{core.InvocationFilter{Limit: 1 << 30}, 1000, "inv-1002", "inv-0003"},
		{core.InvocationFilter{Limit: 1 << 30, Offset: 1000}, 3, "inv-0002", "inv-0000"},
		{core.InvocationFilter{AgentID: "agent-1", Offset: 990}, 13, "inv-0012", "inv-0000"},
	}
	for _, tt := range tests {
		got, err := s.Invocations(t.Context(), tt.f)
		if err != nil {
			t.Fatalf("Invocations(%+v) = %v", tt.f, err)
		}
		first, last := "", ""
		if len(got) > 0 {
			first, last = got[0].ID, got[len(got)-1].ID
		}
		if len(got) != tt.wantLen || first != tt.wantFirst || last != tt.wantLast {
			t.Errorf("Invocations(%+v) = %d items %s…%s, want %d items %s…%s", tt.f, len(got), first, last, tt.wantLen, tt.wantFirst, tt.wantLast)
		}
	}
}

func testInvocationsBadFilter(t *testing.T, s core.Store) {
	mustCreate(t, s, invocation("inv-1", "agent-1", base))
	for _, f := range []core.InvocationFilter{
		{Limit: -1},
		{Offset: -1},
		{Limit: 10, Offset: -5},
		{Status: "bogus"},
		{Status: "Running"},
		{Status: "running' OR '1'='1"},
		{Offset: 1, After: &core.InvocationCursor{CreatedAt: base, ID: "inv-1"}},
	} {
		got, err := s.Invocations(t.Context(), f)
		checkCode(t, fmt.Sprintf("Invocations(%+v)", f), err, core.CodeValidation)
		if len(got) != 0 {
			t.Errorf("Invocations(%+v) returned %d items with its error", f, len(got))
		}
	}
}

// testInvocationsFilters: the filters of the console's invocations view
// (agents, end user, caller, time range), each alone and together.
func testInvocationsFilters(t *testing.T, s core.Store) {
	var all []*core.Invocation
	for i := range 12 {
		inv := invocation(fmt.Sprintf("inv-%02d", i), []string{"agent-a", "agent-b", "agent-c"}[i%3], base.Add(time.Duration(i)*time.Minute))
		inv.UserID = []string{"alice", "bob"}[i%2]
		inv.Caller = []string{"key:k1", "key:k2", "key:k3", "key:k4"}[i%4]
		mustCreate(t, s, inv)
		all = append([]*core.Invocation{inv}, all...) // newest first
	}
	match := func(keep func(*core.Invocation) bool) []string {
		out := []string{}
		for _, inv := range all {
			if keep(inv) {
				out = append(out, inv.ID)
			}
		}
		return out
	}
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		f    core.InvocationFilter
		want []string
	}{
		{"agents", core.InvocationFilter{AgentIDs: []string{"agent-a", "agent-c"}}, match(func(i *core.Invocation) bool { return i.AgentID != "agent-b" })},
		{"no agents", core.InvocationFilter{AgentIDs: []string{}}, []string{}},
		{"user", core.InvocationFilter{UserID: "bob"}, match(func(i *core.Invocation) bool { return i.UserID == "bob" })},
		{"caller", core.InvocationFilter{Caller: "key:k2"}, match(func(i *core.Invocation) bool { return i.Caller == "key:k2" })},
		{"since", core.InvocationFilter{Since: at(9)}, []string{"inv-11", "inv-10", "inv-09"}},
		{"until", core.InvocationFilter{Until: at(2)}, []string{"inv-01", "inv-00"}},
		{"since and until", core.InvocationFilter{Since: at(3), Until: at(6)}, []string{"inv-05", "inv-04", "inv-03"}},
		{"all together", core.InvocationFilter{AgentIDs: []string{"agent-a", "agent-b"}, UserID: "alice", Since: at(1), Until: at(11)},
			match(func(i *core.Invocation) bool {
				return i.AgentID != "agent-c" && i.UserID == "alice" && !i.CreatedAt.Before(at(1)) && i.CreatedAt.Before(at(11))
			})},
		{"user nobody is", core.InvocationFilter{UserID: "alice' OR '1'='1"}, []string{}},
	}
	for _, tt := range tests {
		got, err := s.Invocations(t.Context(), tt.f)
		if err != nil {
			t.Fatalf("%s: Invocations(%+v) = %v", tt.name, tt.f, err)
		}
		if !cmp.Equal(ids(got), tt.want) {
			t.Errorf("%s: Invocations(%+v) ids = %v, want %v", tt.name, tt.f, ids(got), tt.want)
		}
	}
}

// testInvocationsCursor: paging with a cursor visits every invocation
// once, in order, also where many share a creation time (ties are
// ordered by id), and with a filter.
func testInvocationsCursor(t *testing.T, s core.Store) {
	var all []*core.Invocation
	for i := range 23 {
		// Groups of four share a time: a page boundary falls inside them.
		inv := invocation(fmt.Sprintf("inv-%02d", (i*7)%23), []string{"agent-a", "agent-b"}[i%2], base.Add(time.Duration(i/4)*time.Second))
		mustCreate(t, s, inv)
		all = append(all, inv)
	}
	slices.SortFunc(all, func(a, b *core.Invocation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, agent := range []string{"", "agent-b"} {
		want := []string{}
		for _, inv := range all {
			if agent == "" || inv.AgentID == agent {
				want = append(want, inv.ID)
			}
		}
		got := []string{}
		f := core.InvocationFilter{AgentID: agent, Limit: 5}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("agent %q: paging does not end: %v", agent, got)
			}
			page, err := s.Invocations(t.Context(), f)
			if err != nil {
				t.Fatalf("Invocations(%+v) = %v", f, err)
			}
			got = append(got, ids(page)...)
			if len(page) < f.Limit {
				break
			}
			last := page[len(page)-1]
			f.After = &core.InvocationCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if !cmp.Equal(got, want) {
			t.Errorf("agent %q: paged by cursor %v, want %v", agent, got, want)
		}
	}
}

func allStatuses(counts map[core.InvocationStatus]int64) map[core.InvocationStatus]int64 {
	m := map[core.InvocationStatus]int64{
		core.StatusRunning: 0, core.StatusCompleted: 0, core.StatusFailed: 0,
		core.StatusTimeout: 0, core.StatusCancelled: 0,
	}
	for k, v := range counts {
		m[k] = v
	}
	return m
}

func testInvocationStats(t *testing.T, s core.Store) {
	ctx := t.Context()
	runs := []struct {
		status   core.InvocationStatus
		duration int64
	}{
		{core.StatusCompleted, 100},
		{core.StatusCompleted, 200},
		{core.StatusFailed, 300},
		{core.StatusTimeout, 400},
		{core.StatusCancelled, 0},
		{core.StatusRunning, 0}, // newest, and not part of the average
	}
	for i, r := range runs {
		inv := invocation(fmt.Sprintf("inv-%d", i), "agent-1", base.Add(time.Duration(i)*time.Minute))
		mustCreate(t, s, inv)
		if r.status != core.StatusRunning {
			mustFinish(t, s, finished(inv, r.status, r.duration))
		}
	}
	// Another agent's invocations do not count.
	other := invocation("inv-other", "agent-2", base.Add(time.Hour))
	mustCreate(t, s, other)
	mustFinish(t, s, finished(other, core.StatusCompleted, 99999))

	got, err := s.InvocationStats(ctx, "agent-1")
	if err != nil {
		t.Fatalf("InvocationStats(agent-1) = %v", err)
	}
	last := base.Add(5 * time.Minute)
	want := &core.InvocationStats{
		AgentID: "agent-1",
		Total:   6,
		ByStatus: allStatuses(map[core.InvocationStatus]int64{
			core.StatusCompleted: 2, core.StatusFailed: 1, core.StatusTimeout: 1,
			core.StatusCancelled: 1, core.StatusRunning: 1,
		}),
		AvgDurationMS: 200, // (100+200+300+400+0)/5
		LastAt:        &last,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("InvocationStats(agent-1) (-got +want):\n%s", diff)
	}
	if got.LastAt != nil {
		checkUTC(t, "InvocationStats.LastAt", *got.LastAt)
	}

	// A fractional average.
	for i, d := range []int64{1, 2, 2} {
		inv := invocation(fmt.Sprintf("frac-%d", i), "agent-3", base)
		mustCreate(t, s, inv)
		mustFinish(t, s, finished(inv, core.StatusCompleted, d))
	}
	got, err = s.InvocationStats(ctx, "agent-3")
	if err != nil {
		t.Fatalf("InvocationStats(agent-3) = %v", err)
	}
	if want := 5.0 / 3; math.Abs(got.AvgDurationMS-want) > 1e-9 {
		t.Errorf("InvocationStats(agent-3).AvgDurationMS = %v, want %v", got.AvgDurationMS, want)
	}
}

func testInvocationStatsEmpty(t *testing.T, s core.Store) {
	// Only running invocations: nothing to average, but a last time.
	mustCreate(t, s, invocation("inv-1", "agent-running", base))
	for _, tt := range []struct {
		agentID string
		want    *core.InvocationStats
	}{
		{"agent-none", &core.InvocationStats{AgentID: "agent-none", ByStatus: allStatuses(nil)}},
		{"agent-running", &core.InvocationStats{
			AgentID: "agent-running", Total: 1,
			ByStatus: allStatuses(map[core.InvocationStatus]int64{core.StatusRunning: 1}),
			LastAt:   &base,
		}},
	} {
		got, err := s.InvocationStats(t.Context(), tt.agentID)
		if err != nil {
			t.Fatalf("InvocationStats(%q) = %v, want zeros", tt.agentID, err)
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("InvocationStats(%q) (-got +want):\n%s", tt.agentID, diff)
		}
	}
}

func total(t *testing.T, s core.Store, agentID string) int64 {
	t.Helper()
	st, err := s.InvocationStats(t.Context(), agentID)
	if err != nil {
		t.Fatalf("InvocationStats(%q) = %v", agentID, err)
	}
	return st.Total
}

func testDeleteInvocationsBefore(t *testing.T, s core.Store) {
	ctx := t.Context()
	cutoff := base
	// More old finished ones than fit in one or two deletion batches.
	const old = 1203
	statuses := []core.InvocationStatus{core.StatusCompleted, core.StatusFailed, core.StatusTimeout, core.StatusCancelled}
	for i := range old {
		inv := invocation(fmt.Sprintf("old-%04d", i), "agent-1", cutoff.Add(-time.Duration(i+1)*time.Microsecond))
		mustCreate(t, s, inv)
		mustFinish(t, s, finished(inv, statuses[i%len(statuses)], 1))
	}
	keep := []*core.Invocation{
		invocation("old-running-1", "agent-1", cutoff.Add(-time.Hour)),
		invocation("old-running-2", "agent-1", cutoff.Add(-time.Microsecond)),
	}
	for _, inv := range keep {
		mustCreate(t, s, inv)
	}
	for i, created := range []time.Time{cutoff, cutoff.Add(time.Microsecond), cutoff.Add(time.Hour)} {
		inv := invocation(fmt.Sprintf("new-%d", i), "agent-1", created)
		mustCreate(t, s, inv)
		inv = finished(inv, core.StatusCompleted, 1)
		mustFinish(t, s, inv)
		keep = append(keep, inv)
	}
	const all = old + 5

	n, err := s.DeleteInvocationsBefore(ctx, cutoff, true)
	if err != nil || n != old {
		t.Fatalf("DeleteInvocationsBefore(dry run) = %d, %v; want %d, nil", n, err, old)
	}
	if got := total(t, s, "agent-1"); got != all {
		t.Fatalf("after a dry run %d invocations are left, want all %d", got, all)
	}

	n, err = s.DeleteInvocationsBefore(ctx, cutoff, false)
	if err != nil || n != old {
		t.Fatalf("DeleteInvocationsBefore = %d, %v; want %d, nil", n, err, old)
	}
	if got := total(t, s, "agent-1"); got != all-old {
		t.Errorf("after deleting %d invocations are left, want %d", got, all-old)
	}
	for _, inv := range keep {
		checkInvocation(t, "kept invocation "+inv.ID, mustInvocation(t, s, inv.ID), inv)
	}
	_, err = s.Invocation(ctx, "old-0000")
	checkNotFound(t, "Invocation(old-0000) after deletion", err)

	n, err = s.DeleteInvocationsBefore(ctx, cutoff, false)
	if err != nil || n != 0 {
		t.Errorf("second DeleteInvocationsBefore = %d, %v; want 0, nil", n, err)
	}
	n, err = s.DeleteInvocationsBefore(ctx, cutoff, true)
	if err != nil || n != 0 {
		t.Errorf("DeleteInvocationsBefore(dry run) after deleting = %d, %v; want 0, nil", n, err)
	}
}

func testSetInvocationLogs(t *testing.T, s core.Store) {
	ctx := t.Context()
	created := time.Now().UTC().Truncate(time.Microsecond)
	inv := invocation("logs-1", "agent-1", created)
	mustCreate(t, s, inv)
	if err := s.SetInvocationLogs(ctx, inv.ID, "early"); core.ErrorCode(err) != core.CodeConflict {
		t.Errorf("SetInvocationLogs on a running invocation = %v, want CONFLICT", err)
	}
	inv = finished(inv, core.StatusCompleted, 5)
	mustFinish(t, s, inv)
	const logs = "line 1\nline 2 \u00e9 '; DROP TABLE invocations; --\n"
	if err := s.SetInvocationLogs(ctx, inv.ID, logs); err != nil {
		t.Fatalf("SetInvocationLogs: %v", err)
	}
	got := mustInvocation(t, s, inv.ID)
	if got.Logs != logs {
		t.Errorf("Logs = %q, want %q", got.Logs, logs)
	}
	// Nothing else changed.
	got.Logs = inv.Logs
	if diff := cmp.Diff(inv, got); diff != "" {
		t.Errorf("SetInvocationLogs changed more than the logs (-want +got):\n%s", diff)
	}
	if err := s.SetInvocationLogs(ctx, "no-such-invocation", "x"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("SetInvocationLogs(unknown) = %v, want ErrNotFound", err)
	}
}

func testFailNodeInvocations(t *testing.T, s core.Store) {
	ctx := t.Context()
	n, err := s.FailNodeInvocations(ctx, "node-a", true, "nothing to do")
	if err != nil || n != 0 {
		t.Fatalf("FailNodeInvocations on an empty store = %d, %v; want 0, nil", n, err)
	}

	created := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
	create := func(id, node string) *core.Invocation {
		inv := invocation(id, "agent-1", created)
		inv.NodeID = node
		mustCreate(t, s, inv)
		return inv
	}
	var running, done []*core.Invocation
	for i := range 3 {
		running = append(running, create(fmt.Sprintf("running-%d", i), "node-a"))
	}
	other := create("running-on-b", "node-b")
	unowned := create("running-unowned", "")
	for i, st := range []core.InvocationStatus{core.StatusCompleted, core.StatusTimeout} {
		inv := finished(create(fmt.Sprintf("done-%d", i), "node-a"), st, 10)
		mustFinish(t, s, inv)
		done = append(done, inv)
	}

	const msg = "runagent restarted; the invocation's outcome is unknown"
	n, err = s.FailNodeInvocations(ctx, "node-a", false, msg)
	if err != nil || n != 3 {
		t.Fatalf("FailNodeInvocations(node-a) = %d, %v; want 3, nil", n, err)
	}
	for _, inv := range running {
		got := mustInvocation(t, s, inv.ID)
		if got.Status != core.StatusFailed || got.ErrorCode != core.CodeInternal || got.ErrorMessage != msg {
			t.Errorf("Invocation(%s) = status %q code %q message %q, want %q %q %q",
				inv.ID, got.Status, got.ErrorCode, got.ErrorMessage, core.StatusFailed, core.CodeInternal, msg)
		}
		if got.CompletedAt == nil || got.CompletedAt.Before(got.CreatedAt) {
			t.Errorf("Invocation(%s).CompletedAt = %v, want set, not before %v", inv.ID, got.CompletedAt, got.CreatedAt)
		}
		if got.CompletedAt != nil {
			if want := got.CompletedAt.Sub(got.CreatedAt).Milliseconds(); got.DurationMS < want-1 || got.DurationMS > want+1 {
				t.Errorf("Invocation(%s).DurationMS = %d, want %d (CompletedAt - CreatedAt)", inv.ID, got.DurationMS, want)
			}
		}
		// The rest of the record is untouched.
		if got.AgentID != inv.AgentID || got.NodeID != inv.NodeID || string(got.InputArgs) != string(inv.InputArgs) || !got.CreatedAt.Equal(inv.CreatedAt) {
			t.Errorf("Invocation(%s) = %+v, want the created fields of %+v", inv.ID, got, inv)
		}
		// A failed invocation is finished.
		checkCode(t, "FinishInvocation after FailNodeInvocations",
			s.FinishInvocation(ctx, finished(inv, core.StatusCompleted, 1)), core.CodeConflict)
	}
	for _, inv := range done {
		checkInvocation(t, "finished invocation "+inv.ID, mustInvocation(t, s, inv.ID), inv)
	}
	// Another node's and the unowned are left running.
	for _, inv := range []*core.Invocation{other, unowned} {
		checkInvocation(t, "invocation "+inv.ID+" of another node", mustInvocation(t, s, inv.ID), inv)
	}

	n, err = s.FailNodeInvocations(ctx, "node-a", false, msg)
	if err != nil || n != 0 {
		t.Errorf("second FailNodeInvocations(node-a) = %d, %v; want 0, nil", n, err)
	}
	// With unowned, also those recorded without a node; still not node-b's.
	n, err = s.FailNodeInvocations(ctx, "node-a", true, msg)
	if err != nil || n != 1 {
		t.Errorf("FailNodeInvocations(node-a, unowned) = %d, %v; want 1, nil", n, err)
	}
	if got := mustInvocation(t, s, unowned.ID); got.Status != core.StatusFailed {
		t.Errorf("unowned invocation after FailNodeInvocations(unowned) is %s, want failed", got.Status)
	}
	checkInvocation(t, "invocation of node-b", mustInvocation(t, s, other.ID), other)
}

func testConcurrentWriters(t *testing.T, s core.Store) {
	const writers, each = 8, 50
	ctx := t.Context()
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		readers sync.WaitGroup
	)
	// Readers run alongside the writers.
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Invocations(ctx, core.InvocationFilter{AgentID: "agent-1", Limit: 20}); err != nil {
					t.Errorf("concurrent Invocations = %v", err)
					return
				}
				if _, err := s.InvocationStats(ctx, "agent-1"); err != nil {
					t.Errorf("concurrent InvocationStats = %v", err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				inv := invocation(fmt.Sprintf("w%d-%03d", w, i), "agent-1", base.Add(time.Duration(w*each+i)*time.Microsecond))
				if err := s.CreateInvocation(ctx, inv); err != nil {
					t.Errorf("CreateInvocation(%s) = %v", inv.ID, err)
					return
				}
				if err := s.FinishInvocation(ctx, finished(inv, core.StatusCompleted, int64(i))); err != nil {
					t.Errorf("FinishInvocation(%s) = %v", inv.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if t.Failed() {
		return
	}

	got, err := s.Invocations(ctx, core.InvocationFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("Invocations = %v", err)
	}
	seen := map[string]bool{}
	for _, inv := range got {
		if inv.Status != core.StatusCompleted {
			t.Errorf("Invocation %s status = %q, want completed", inv.ID, inv.Status)
		}
		seen[inv.ID] = true
	}
	for w := range writers {
		for i := range each {
			if id := fmt.Sprintf("w%d-%03d", w, i); !seen[id] {
				t.Errorf("invocation %s is missing", id)
			}
		}
	}
	if len(got) != writers*each {
		t.Errorf("Invocations returned %d, want %d", len(got), writers*each)
	}
	st, err := s.InvocationStats(ctx, "agent-1")
	if err != nil || st.Total != writers*each || st.ByStatus[core.StatusCompleted] != writers*each {
		t.Errorf("InvocationStats = %+v, %v; want %d completed", st, err, writers*each)
	}
}

// hostile are strings that break naive quoting, LIKE matching or
// encoding; every store must keep them unchanged.
var hostile = []string{
	`'`,
	`''`,
	`"`,
	`\`,
	`'; DROP TABLE invocations; --`,
	`" OR 1=1 --`,
	`x'); DELETE FROM agents; --`,
	`%`,
	`_`,
	`a%b_c`,
	`$1 ? :name @p1`,
	"héllo wörld",
	"日本語のエージェント",
	"🚀 emoji \U0001F9E0",
	"\u202eright-to-left override",
	"zero\u200bwidth",
	"line1\nline2\r\n\ttab",
	"  leading and trailing spaces  ",
	strings.Repeat("long ", 200),
}

func testHostileStrings(t *testing.T, s core.Store) {
	ctx := t.Context()
	for i, h := range hostile {
		agentID := h
		v := &core.AgentVersion{
			AgentID: agentID,
			Hash:    "sha256:" + h,
			Config:  core.AgentConfig{AgentName: h, AgentID: agentID, Description: h, EnvVars: map[string]string{h: h}},
			Package: []byte(h),
			Size:    int64(len(h)),
		}
		mustPut(t, s, v, true)
		if a := mustAgent(t, s, agentID); a.ID != h || a.Name != h || a.CurrentVersion != "sha256:"+h {
			t.Errorf("Agent(hostile %d) = %+v, want every field from %q", i, a, h)
		}
		if got := mustVersion(t, s, agentID, "sha256:"+h); !cmp.Equal(got, v, exactBytes) {
			t.Errorf("AgentVersion(hostile %d) (-got +want):\n%s", i, cmp.Diff(got, v, exactBytes))
		}

		inv := &core.Invocation{
			ID:            fmt.Sprintf("inv-%d-%s", i, h),
			AgentID:       agentID,
			AgentVersion:  h,
			EntrypointTag: h,
			Transport:     h,
			Status:        core.StatusRunning,
			Caller:        h,
			UserID:        h,
			InputArgs:     mustJSON(t, []string{h}),
			InputKwargs:   mustJSON(t, map[string]string{h: h}),
			CreatedAt:     base,
		}
		mustCreate(t, s, inv)
		fin := *inv
		fin.Status = core.StatusFailed
		fin.Output = mustJSON(t, h)
		fin.Logs = h
		fin.ErrorCode = h
		fin.ErrorMessage = h
		done := base.Add(time.Second)
		fin.CompletedAt = &done
		mustFinish(t, s, &fin)
		checkInvocation(t, fmt.Sprintf("Invocation(hostile %d)", i), mustInvocation(t, s, fin.ID), &fin)

		// Filtering matches the value exactly: no wildcards, no injection.
		got, err := s.Invocations(ctx, core.InvocationFilter{AgentID: h})
		if err != nil || len(got) != 1 || got[0].ID != fin.ID {
			t.Errorf("Invocations(AgentID: hostile %d) = %v, %v; want just %q", i, ids(got), err, fin.ID)
		}
		if st, err := s.InvocationStats(ctx, h); err != nil || st.Total != 1 {
			t.Errorf("InvocationStats(hostile %d) = %+v, %v; want 1 invocation", i, st, err)
		}
	}
	// Nothing was dropped or deleted along the way.
	agents, err := s.Agents(ctx)
	if err != nil || len(agents) != len(hostile) {
		t.Errorf("Agents() = %d agents, %v; want %d", len(agents), err, len(hostile))
	}
	invs, err := s.Invocations(ctx, core.InvocationFilter{Limit: 1000})
	if err != nil || len(invs) != len(hostile) {
		t.Errorf("Invocations() = %d, %v; want %d", len(invs), err, len(hostile))
	}
}

// testUnrepresentableStrings checks strings some databases cannot hold: a
// store may refuse them, but must not change them.
func testUnrepresentableStrings(t *testing.T, s core.Store) {
	for i, h := range []string{
		"nul\x00byte",
		"\x00",
		"invalid \xff\xfe utf-8",
		"\xed\xa0\x80 surrogate",
	} {
		inv := &core.Invocation{
			ID: fmt.Sprintf("inv-%d", i), AgentID: "agent-1", Status: core.StatusRunning,
			Caller: h, UserID: h, CreatedAt: base,
		}
		if err := s.CreateInvocation(t.Context(), inv); err != nil {
			t.Logf("CreateInvocation with %q refused: %v", h, err)
			continue
		}
		checkInvocation(t, fmt.Sprintf("Invocation with %q", h), mustInvocation(t, s, inv.ID), inv)

		fin := *inv
		fin.Status = core.StatusFailed
		fin.Logs, fin.ErrorMessage = h, h
		done := base.Add(time.Second)
		fin.CompletedAt = &done
		if err := s.FinishInvocation(t.Context(), &fin); err != nil {
			t.Logf("FinishInvocation with %q refused: %v", h, err)
			continue
		}
		checkInvocation(t, fmt.Sprintf("finished Invocation with %q", h), mustInvocation(t, s, inv.ID), &fin)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%v) = %v", v, err)
	}
	return b
}
