package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// eventTests are run by Run on a store that must also be a
// core.EventStore.
//
// Beyond the documentation of core.EventStore, they pin down:
//
//   - Events come back equal to what was appended: times in UTC, strings
//     unchanged, and nil or empty Details as nil.
//   - AppendEvents fills in a zero Time in the caller's slice. An empty ID,
//     an unknown or empty Type or Severity is a CodeValidation error and a
//     duplicate ID, within the batch or with a stored event, a CodeConflict
//     error. Strings that are not valid UTF-8 or hold a NUL byte are
//     refused with an error. A refused batch stores nothing; an empty batch
//     is no error.
//   - Events orders by Time descending, then ID descending. Since is
//     inclusive and Until exclusive; the other fields match exactly
//     (Severity too: it is not a minimum). Limit 0 means 50, limits are
//     capped at 1000, and a negative Limit or Offset or an unknown Type or
//     Severity is a CodeValidation error.
//   - CountEvents counts per bucket (from Since, of the bucket's width)
//     and type, Since inclusive and Until exclusive, with the other
//     filter fields as Events has them; empty buckets and types are left
//     out, the rest ordered by bucket then type.
//   - DeleteEventsBefore deletes events strictly before t; dryRun counts
//     the same events and deletes nothing.
var eventTests = []struct {
	name string
	fn   func(t *testing.T, s core.EventStore)
}{
	{"EventRoundTrip", testEventRoundTrip},
	{"AppendEventsDefaults", testAppendEventsDefaults},
	{"AppendEventsErrors", testAppendEventsErrors},
	{"AppendEventsUnrepresentable", testAppendEventsUnrepresentable},
	{"EventFilters", testEventFilters},
	{"EventsLimits", testEventsLimits},
	{"EventsBadFilter", testEventsBadFilter},
	{"DeleteEventsBefore", testDeleteEventsBefore},
	{"EventHostileStrings", testEventHostileStrings},
	{"ConcurrentAppends", testConcurrentAppends},
	{"CountEvents", testCountEvents},
	{"CountEventsBadFilter", testCountEventsBadFilter},
}

// runEventTests runs eventTests; see Run.
func runEventTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range eventTests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			es, ok := s.(core.EventStore)
			if !ok {
				t.Fatalf("%T does not implement core.EventStore", s)
			}
			tt.fn(t, es)
		})
	}
}

// event returns an auth failure from ip at the given time.
func event(id string, at time.Time) core.SecurityEvent {
	return core.SecurityEvent{
		ID: id, Time: at, Type: core.EventAuthFailure, Severity: core.SeverityWarning,
		IP: "192.0.2.1", Message: "authentication failed",
	}
}

func mustAppend(t *testing.T, s core.EventStore, evs ...core.SecurityEvent) {
	t.Helper()
	if err := s.AppendEvents(t.Context(), evs); err != nil {
		t.Fatalf("AppendEvents(%d events) = %v", len(evs), err)
	}
}

func mustEvents(t *testing.T, s core.EventStore, f core.EventFilter) []core.SecurityEvent {
	t.Helper()
	evs, err := s.Events(t.Context(), f)
	if err != nil {
		t.Fatalf("Events(%+v) = %v", f, err)
	}
	for _, ev := range evs {
		checkUTC(t, "SecurityEvent.Time", ev.Time)
	}
	return evs
}

func eventIDs(evs []core.SecurityEvent) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// checkEventCount checks how many events the store holds in all.
func checkEventCount(t *testing.T, s core.EventStore, what string, want int64) {
	t.Helper()
	n, err := s.DeleteEventsBefore(t.Context(), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), true)
	if err != nil {
		t.Fatalf("DeleteEventsBefore(dry run) = %v", err)
	}
	if n != want {
		t.Errorf("%s: the store holds %d events, want %d", what, n, want)
	}
}

func testEventRoundTrip(t *testing.T, s core.EventStore) {
	full := core.SecurityEvent{
		ID:           "ev-full",
		Time:         base,
		Type:         core.EventSandboxViolation,
		Severity:     core.SeverityCritical,
		Principal:    "principal-1",
		IP:           "2001:db8::1",
		AgentID:      "agent-1",
		InvocationID: "inv-1",
		RequestID:    "req-1",
		Message:      "denied system call",
		Details:      map[string]string{"syscall": "ptrace", "limit": "", "ünïcode": "日本語", "quote\"key": "line\nbreak"},
	}
	bare := core.SecurityEvent{ID: "ev-bare", Time: base.Add(-time.Second), Type: core.EventKeyCreated, Severity: core.SeverityInfo}
	empty := core.SecurityEvent{
		ID: "ev-empty", Time: base.Add(-2 * time.Second), Type: core.EventConfigChanged, Severity: core.SeverityInfo,
		Details: map[string]string{},
	}
	mustAppend(t, s, bare, full, empty)

	empty.Details = nil // empty reads back as nil
	check(t, "Events()", mustEvents(t, s, core.EventFilter{}), []core.SecurityEvent{full, bare, empty})

	// Every type and severity round-trips.
	var want []core.SecurityEvent
	for i, typ := range core.AllEventTypes {
		sev := core.AllSeverities[i%len(core.AllSeverities)]
		ev := core.SecurityEvent{ID: fmt.Sprintf("ev-type-%02d", i), Time: base.Add(time.Duration(i+1) * time.Hour), Type: typ, Severity: sev}
		mustAppend(t, s, ev)
		want = append([]core.SecurityEvent{ev}, want...)
	}
	check(t, "Events() of every type", mustEvents(t, s, core.EventFilter{Since: base.Add(time.Hour)}), want)
}

func testAppendEventsDefaults(t *testing.T, s core.EventStore) {
	before := time.Now()
	evs := []core.SecurityEvent{event("ev-1", time.Time{})}
	mustAppend(t, s, evs...)
	aboutNow(t, "AppendEvents set Time", evs[0].Time, before)
	check(t, "Events()", mustEvents(t, s, core.EventFilter{}), evs)

	if err := s.AppendEvents(t.Context(), nil); err != nil {
		t.Errorf("AppendEvents(nil) = %v, want nil", err)
	}
	if err := s.AppendEvents(t.Context(), []core.SecurityEvent{}); err != nil {
		t.Errorf("AppendEvents(empty) = %v, want nil", err)
	}
	checkEventCount(t, s, "after empty batches", 1)
}

func testAppendEventsErrors(t *testing.T, s core.EventStore) {
	ctx := t.Context()
	stored := event("ev-stored", base)
	mustAppend(t, s, stored)

	with := func(f func(ev *core.SecurityEvent)) core.SecurityEvent {
		ev := event("ev-new", base.Add(time.Second))
		f(&ev)
		return ev
	}
	tests := []struct {
		name  string
		batch []core.SecurityEvent
		code  string
	}{
		{"no id", []core.SecurityEvent{with(func(ev *core.SecurityEvent) { ev.ID = "" })}, core.CodeValidation},
		{"no type", []core.SecurityEvent{with(func(ev *core.SecurityEvent) { ev.Type = "" })}, core.CodeValidation},
		{"unknown type", []core.SecurityEvent{with(func(ev *core.SecurityEvent) { ev.Type = "Auth_Failure" })}, core.CodeValidation},
		{"no severity", []core.SecurityEvent{with(func(ev *core.SecurityEvent) { ev.Severity = "" })}, core.CodeValidation},
		{"unknown severity", []core.SecurityEvent{with(func(ev *core.SecurityEvent) { ev.Severity = "fatal" })}, core.CodeValidation},
		{"bad event after a good one", []core.SecurityEvent{
			event("ev-good", base), with(func(ev *core.SecurityEvent) { ev.Severity = "fatal" }),
		}, core.CodeValidation},
		{"duplicate of a stored event", []core.SecurityEvent{
			event("ev-good", base), with(func(ev *core.SecurityEvent) { ev.ID = "ev-stored"; ev.Message = "impostor" }),
		}, core.CodeConflict},
		{"duplicate within the batch", []core.SecurityEvent{event("ev-dup", base), event("ev-dup", base)}, core.CodeConflict},
	}
	for _, tt := range tests {
		checkCode(t, "AppendEvents("+tt.name+")", s.AppendEvents(ctx, tt.batch), tt.code)
	}
	// Nothing of a refused batch is stored, and the stored event is intact.
	check(t, "Events() after refused batches", mustEvents(t, s, core.EventFilter{}), []core.SecurityEvent{stored})
}

func testAppendEventsUnrepresentable(t *testing.T, s core.EventStore) {
	for _, h := range []string{"nul\x00byte", "\x00", "invalid \xff\xfe utf-8", "\xed\xa0\x80 surrogate"} {
		for _, field := range []string{"message", "principal", "ip", "agent_id", "invocation_id", "request_id", "detail key", "detail value"} {
			ev := event("ev-1", base)
			switch field {
			case "message":
				ev.Message = h
			case "principal":
				ev.Principal = h
			case "ip":
				ev.IP = h
			case "agent_id":
				ev.AgentID = h
			case "invocation_id":
				ev.InvocationID = h
			case "request_id":
				ev.RequestID = h
			case "detail key":
				ev.Details = map[string]string{h: "v"}
			case "detail value":
				ev.Details = map[string]string{"k": h}
			}
			if err := s.AppendEvents(t.Context(), []core.SecurityEvent{event("ev-0", base), ev}); err == nil {
				t.Errorf("AppendEvents with %s %q = nil error, want it refused", field, h)
			}
		}
	}
	checkEventCount(t, s, "after refused batches", 0)
}

// eventFixture appends events that differ in every filtered field and
// returns them by id.
func eventFixture(t *testing.T, s core.EventStore) {
	t.Helper()
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	mustAppend(t, s,
		core.SecurityEvent{ID: "e1", Time: at(1), Type: core.EventAuthFailure, Severity: core.SeverityWarning, IP: "192.0.2.1", Principal: "key:k1"},
		core.SecurityEvent{ID: "e2", Time: at(2), Type: core.EventAuthFailure, Severity: core.SeverityWarning, IP: "192.0.2.2"},
		core.SecurityEvent{ID: "e3", Time: at(3), Type: core.EventRateLimitExceeded, Severity: core.SeverityWarning, IP: "192.0.2.1", Principal: "alice"},
		core.SecurityEvent{ID: "e4", Time: at(4), Type: core.EventSandboxViolation, Severity: core.SeverityCritical, Principal: "alice", AgentID: "agent-1", InvocationID: "inv-1"},
		core.SecurityEvent{ID: "e5", Time: at(5), Type: core.EventEgressDenied, Severity: core.SeverityWarning, Principal: "bob", AgentID: "agent-2"},
		core.SecurityEvent{ID: "e6", Time: at(6), Type: core.EventKeyCreated, Severity: core.SeverityInfo, Principal: "alice"},
		// Same time as e6: the id breaks the tie.
		core.SecurityEvent{ID: "e7", Time: at(6), Type: core.EventAlertFired, Severity: core.SeverityCritical, IP: "192.0.2.1"},
		core.SecurityEvent{ID: "e0", Time: at(6), Type: core.EventSandboxViolation, Severity: core.SeverityCritical, Principal: "alice", AgentID: "agent-1"},
	)
}

func testEventFilters(t *testing.T, s core.EventStore) {
	eventFixture(t, s)
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	tests := []struct {
		name string
		f    core.EventFilter
		want []string
	}{
		{"all", core.EventFilter{}, []string{"e7", "e6", "e0", "e5", "e4", "e3", "e2", "e1"}},
		{"type", core.EventFilter{Type: core.EventAuthFailure}, []string{"e2", "e1"}},
		{"type without events", core.EventFilter{Type: core.EventKeyRevoked}, []string{}},
		{"severity", core.EventFilter{Severity: core.SeverityCritical}, []string{"e7", "e0", "e4"}},
		{"severity is exact", core.EventFilter{Severity: core.SeverityWarning}, []string{"e5", "e3", "e2", "e1"}},
		{"principal", core.EventFilter{Principal: "alice"}, []string{"e6", "e0", "e4", "e3"}},
		{"principal is exact", core.EventFilter{Principal: "alic"}, []string{}},
		{"ip", core.EventFilter{IP: "192.0.2.1"}, []string{"e7", "e3", "e1"}},
		{"agent", core.EventFilter{AgentID: "agent-1"}, []string{"e0", "e4"}},
		{"since is inclusive", core.EventFilter{Since: at(5)}, []string{"e7", "e6", "e0", "e5"}},
		{"until is exclusive", core.EventFilter{Until: at(3)}, []string{"e2", "e1"}},
		{"since and until", core.EventFilter{Since: at(2), Until: at(6)}, []string{"e5", "e4", "e3", "e2"}},
		{"since after until", core.EventFilter{Since: at(6), Until: at(2)}, []string{}},
		{"since far in the past", core.EventFilter{Since: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, []string{"e7", "e6", "e0", "e5", "e4", "e3", "e2", "e1"}},
		{"until far in the future", core.EventFilter{Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Type: core.EventAuthFailure}, []string{"e2", "e1"}},
		{"until far in the past", core.EventFilter{Until: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, []string{}},
		{"combined", core.EventFilter{Principal: "alice", Type: core.EventSandboxViolation, Severity: core.SeverityCritical, AgentID: "agent-1", Until: at(6)}, []string{"e4"}},
		{"combined with ip", core.EventFilter{IP: "192.0.2.1", Principal: "alice"}, []string{"e3"}},
		{"limit", core.EventFilter{Limit: 2}, []string{"e7", "e6"}},
		{"offset", core.EventFilter{Limit: 2, Offset: 2}, []string{"e0", "e5"}},
		{"offset past the end", core.EventFilter{Offset: 8}, []string{}},
		{"filtered page", core.EventFilter{Principal: "alice", Limit: 2, Offset: 1}, []string{"e0", "e4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventIDs(mustEvents(t, s, tt.f)); !cmp.Equal(got, tt.want) {
				t.Errorf("Events(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

func testEventsLimits(t *testing.T, s core.EventStore) {
	const n = 1003
	batch := make([]core.SecurityEvent, n)
	for i := range n {
		batch[i] = event(fmt.Sprintf("ev-%04d", i), base.Add(time.Duration(i)*time.Millisecond))
	}
	mustAppend(t, s, batch...)
	tests := []struct {
		f                   core.EventFilter
		wantLen             int
		wantFirst, wantLast string
	}{
		{core.EventFilter{}, 50, "ev-1002", "ev-0953"},
		{core.EventFilter{Limit: 1}, 1, "ev-1002", "ev-1002"},
		{core.EventFilter{Limit: 1000}, 1000, "ev-1002", "ev-0003"},
		{core.EventFilter{Limit: 1001}, 1000, "ev-1002", "ev-0003"},
		{core.EventFilter{Limit: 1 << 30}, 1000, "ev-1002", "ev-0003"},
		{core.EventFilter{Limit: 1 << 30, Offset: 1000}, 3, "ev-0002", "ev-0000"},
		{core.EventFilter{Type: core.EventAuthFailure, Offset: 990}, 13, "ev-0012", "ev-0000"},
	}
	for _, tt := range tests {
		got := mustEvents(t, s, tt.f)
		first, last := "", ""
		if len(got) > 0 {
			first, last = got[0].ID, got[len(got)-1].ID
		}
		if len(got) != tt.wantLen || first != tt.wantFirst || last != tt.wantLast {
			t.Errorf("Events(%+v) = %d items %s…%s, want %d items %s…%s", tt.f, len(got), first, last, tt.wantLen, tt.wantFirst, tt.wantLast)
		}
	}
}

func testEventsBadFilter(t *testing.T, s core.EventStore) {
	mustAppend(t, s, event("ev-1", base))
	for _, f := range []core.EventFilter{
		{Limit: -1},
		{Offset: -1},
		{Limit: 10, Offset: -5},
		{Type: "bogus"},
		{Type: "AUTH_FAILURE"},
		{Severity: "Warning"},
		{Severity: "fatal"},
	} {
		evs, err := s.Events(t.Context(), f)
		checkCode(t, fmt.Sprintf("Events(%+v) = %d events, error", f, len(evs)), err, core.CodeValidation)
	}
}

func testDeleteEventsBefore(t *testing.T, s core.EventStore) {
	ctx := t.Context()
	cutoff := base
	// More old events than fit in one or two deletion batches.
	const old = 1203
	batch := make([]core.SecurityEvent, 0, old)
	for i := range old {
		batch = append(batch, event(fmt.Sprintf("old-%04d", i), cutoff.Add(-time.Duration(i+1)*time.Microsecond)))
	}
	mustAppend(t, s, batch...)
	mustAppend(t, s, event("at-cutoff", cutoff), event("new", cutoff.Add(time.Hour)))

	n, err := s.DeleteEventsBefore(ctx, cutoff, true)
	if err != nil || n != old {
		t.Fatalf("DeleteEventsBefore(dry run) = %d, %v; want %d, nil", n, err, old)
	}
	checkEventCount(t, s, "after a dry run", old+2)

	n, err = s.DeleteEventsBefore(ctx, cutoff, false)
	if err != nil || n != old {
		t.Fatalf("DeleteEventsBefore = %d, %v; want %d, nil", n, err, old)
	}
	if got, want := eventIDs(mustEvents(t, s, core.EventFilter{})), []string{"new", "at-cutoff"}; !cmp.Equal(got, want) {
		t.Errorf("Events() after delete = %v, want %v", got, want)
	}
	n, err = s.DeleteEventsBefore(ctx, cutoff, false)
	if err != nil || n != 0 {
		t.Errorf("DeleteEventsBefore again = %d, %v; want 0, nil", n, err)
	}

	// Times outside what a store can hold are before or after everything.
	if n, err := s.DeleteEventsBefore(ctx, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false); err != nil || n != 0 {
		t.Errorf("DeleteEventsBefore(year 1) = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteEventsBefore(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false); err != nil || n != 2 {
		t.Errorf("DeleteEventsBefore(year 9999) = %d, %v; want 2, nil", n, err)
	}
	checkEventCount(t, s, "after deleting everything", 0)
}

func testEventHostileStrings(t *testing.T, s core.EventStore) {
	for i, h := range hostile {
		ev := core.SecurityEvent{
			ID: fmt.Sprintf("ev-%02d-%s", i, h), Time: base.Add(time.Duration(i) * time.Second),
			Type: core.EventInputRejected, Severity: core.SeverityWarning,
			Principal: h, IP: h, AgentID: h, InvocationID: h, RequestID: h, Message: h,
			Details: map[string]string{h: h, "k": h},
		}
		mustAppend(t, s, ev)
		for _, f := range []core.EventFilter{{Principal: h}, {IP: h}, {AgentID: h}} {
			check(t, fmt.Sprintf("Events(%+v)", f), mustEvents(t, s, f), []core.SecurityEvent{ev})
		}
	}
	checkEventCount(t, s, "after hostile strings", int64(len(hostile)))
}

func testConcurrentAppends(t *testing.T, s core.EventStore) {
	const writers, batches, size = 4, 10, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]core.SecurityEvent, size)
				for i := range batch {
					batch[i] = event(fmt.Sprintf("ev-%d-%d-%d", w, b, i), base.Add(time.Duration(i)*time.Microsecond))
				}
				if err := s.AppendEvents(t.Context(), batch); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent AppendEvents = %v", err)
	}
	checkEventCount(t, s, "after concurrent appends", writers*batches*size)
}

func testCountEvents(t *testing.T, s core.EventStore) {
	typed := func(id string, at time.Time, typ core.EventType, ip string) core.SecurityEvent {
		ev := event(id, at)
		ev.Type, ev.IP = typ, ip
		return ev
	}
	mustAppend(t, s,
		typed("before", base.Add(-time.Nanosecond), core.EventAuthFailure, "192.0.2.1"), // before Since
		typed("a1", base, core.EventAuthFailure, "192.0.2.1"),                           // bucket 0, Since inclusive
		typed("a2", base.Add(59*time.Second), core.EventAuthFailure, "192.0.2.2"),       // bucket 0
		typed("k1", base.Add(30*time.Second), core.EventKeyCreated, "192.0.2.1"),        // bucket 0
		typed("a3", base.Add(2*time.Minute), core.EventAuthFailure, "192.0.2.1"),        // bucket 2; bucket 1 is empty
		typed("until", base.Add(3*time.Minute), core.EventAuthFailure, "192.0.2.1"),     // at Until: left out
	)
	f := core.EventFilter{Since: base, Until: base.Add(3 * time.Minute), Limit: 1, Offset: 5}
	got, err := s.CountEvents(t.Context(), f, time.Minute)
	if err != nil {
		t.Fatalf("CountEvents(%+v) = %v", f, err)
	}
	for _, c := range got {
		checkUTC(t, "EventCount.Start", c.Start)
	}
	check(t, "CountEvents(3 minutes by the minute)", got, []core.EventCount{
		{Start: base, Type: core.EventAuthFailure, Count: 2},
		{Start: base, Type: core.EventKeyCreated, Count: 1},
		{Start: base.Add(2 * time.Minute), Type: core.EventAuthFailure, Count: 1},
	})

	f.IP = "192.0.2.2"
	got, err = s.CountEvents(t.Context(), f, time.Minute)
	if err != nil {
		t.Fatalf("CountEvents(%+v) = %v", f, err)
	}
	check(t, "CountEvents(one address)", got, []core.EventCount{{Start: base, Type: core.EventAuthFailure, Count: 1}})

	f.IP = "198.51.100.1"
	got, err = s.CountEvents(t.Context(), f, time.Minute)
	if err != nil || len(got) != 0 {
		t.Errorf("CountEvents(no such address) = %v, %v; want none", got, err)
	}
}

func testCountEventsBadFilter(t *testing.T, s core.EventStore) {
	ctx := t.Context()
	ok := core.EventFilter{Since: base, Until: base.Add(time.Hour)}
	with := func(f func(f *core.EventFilter)) core.EventFilter {
		g := ok
		f(&g)
		return g
	}
	tests := []struct {
		name   string
		f      core.EventFilter
		bucket time.Duration
	}{
		{"no since", with(func(f *core.EventFilter) { f.Since = time.Time{} }), time.Minute},
		{"no until", with(func(f *core.EventFilter) { f.Until = time.Time{} }), time.Minute},
		{"until before since", with(func(f *core.EventFilter) { f.Until = base.Add(-time.Hour) }), time.Minute},
		{"until at since", with(func(f *core.EventFilter) { f.Until = base }), time.Minute},
		{"no bucket", ok, 0},
		{"negative bucket", ok, -time.Minute},
		{"too many buckets", ok, time.Hour / (core.MaxEventBuckets + 1)},
		{"unknown type", with(func(f *core.EventFilter) { f.Type = "nope" }), time.Minute},
		{"unknown severity", with(func(f *core.EventFilter) { f.Severity = "loud" }), time.Minute},
	}
	for _, tt := range tests {
		_, err := s.CountEvents(ctx, tt.f, tt.bucket)
		checkCode(t, "CountEvents("+tt.name+")", err, core.CodeValidation)
	}
	// Exactly MaxEventBuckets is allowed.
	if _, err := s.CountEvents(ctx, ok, time.Hour/core.MaxEventBuckets); err != nil {
		t.Errorf("CountEvents(%d buckets) = %v, want no error", core.MaxEventBuckets, err)
	}
}
