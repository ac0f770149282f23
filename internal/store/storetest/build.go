package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
)

// buildTests pin down, beyond core.BuildStore's documentation:
//
//   - Build returns a build as put, log included; Builds lists one
//     agent's builds newest first (id breaks ties) without their logs,
//     at most limit (0: 20).
//   - An unknown status or an empty id is CodeValidation; a second
//     PutBuild of an id is CodeConflict.
//   - A log longer than the store keeps is cut from the front: its end,
//     where pip says what failed, stays.
var buildTests = []struct {
	name string
	fn   func(t *testing.T, s core.BuildStore)
}{
	{"BuildRoundTrip", testBuildRoundTrip},
	{"BuildErrors", testBuildErrors},
	{"BuildLongLog", testBuildLongLog},
}

func runBuildTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range buildTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

func build(id, agent string, at time.Time, status core.BuildStatus) *core.Build {
	return &core.Build{ID: id, AgentID: agent, ProjectID: "p1", Version: "sha256:" + strings.Repeat("ab", 32),
		EnvKey: strings.Repeat("0f", 32), Status: status, Log: "Collecting attrs\nInstalled attrs-23.1.0\n",
		StartedAt: at, FinishedAt: at.Add(1500 * time.Millisecond)}
}

func testBuildRoundTrip(t *testing.T, s core.BuildStore) {
	ctx := t.Context()
	failed := build("b2", "agent-1", base.Add(time.Minute), core.BuildFailed)
	failed.Error, failed.Cached, failed.EnvKey = "pip failed (exit status 1)", false, ""
	builds := []*core.Build{build("b1", "agent-1", base, core.BuildSucceeded), failed,
		build("b3", "agent-2", base.Add(2*time.Minute), core.BuildSucceeded), build("b0", "agent-1", base.Add(time.Minute), core.BuildSucceeded)}
	builds[0].Cached = true
	for _, b := range builds {
		if err := s.PutBuild(ctx, b); err != nil {
			t.Fatalf("PutBuild(%s) = %v", b.ID, err)
		}
	}
	got, err := s.Build(ctx, "b2")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(failed, got); d != "" {
		t.Errorf("Build(b2) differs (-put +got):\n%s", d)
	}
	list, err := s.Builds(ctx, "agent-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
		if b.Log != "" {
			t.Errorf("Builds lists %s with its log", b.ID)
		}
	}
	if fmt.Sprint(ids) != "[b2 b0 b1]" {
		t.Errorf("Builds(agent-1) = %v, want [b2 b0 b1] (newest first, id descending on ties)", ids)
	}
	if list, _ := s.Builds(ctx, "agent-1", 1); len(list) != 1 {
		t.Errorf("Builds with limit 1 = %d builds", len(list))
	}
	_, err = s.Build(ctx, "nope")
	checkNotFound(t, "Build(nope)", err)
}

func testBuildErrors(t *testing.T, s core.BuildStore) {
	ctx := t.Context()
	checkCode(t, "PutBuild without an id", s.PutBuild(ctx, build("", "a", base, core.BuildSucceeded)), core.CodeValidation)
	checkCode(t, "PutBuild with an unknown status", s.PutBuild(ctx, build("x", "a", base, "maybe")), core.CodeValidation)
	if err := s.PutBuild(ctx, build("x", "a", base, core.BuildSucceeded)); err != nil {
		t.Fatal(err)
	}
	checkCode(t, "PutBuild of an existing id", s.PutBuild(ctx, build("x", "a", base, core.BuildFailed)), core.CodeConflict)
}

func testBuildLongLog(t *testing.T, s core.BuildStore) {
	b := build("long", "a", base, core.BuildFailed)
	b.Log = strings.Repeat("Collecting something\n", 100_000) + "ERROR: No matching distribution found for attrs==99\n"
	if err := s.PutBuild(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Build(t.Context(), "long")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got.Log, "ERROR: No matching distribution found for attrs==99\n") || len(got.Log) >= len(b.Log) {
		t.Errorf("a long log kept %d of %d bytes, ending %q", len(got.Log), len(b.Log), got.Log[max(0, len(got.Log)-80):])
	}
}
