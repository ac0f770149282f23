package events

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// t0 is the tests' reference time.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustDetector(t *testing.T, rules []Rule, cooldown time.Duration, max int) *detector {
	t.Helper()
	d, err := newDetector(rules, cooldown, max)
	if err != nil {
		t.Fatalf("newDetector = %v", err)
	}
	return d
}

// feed observes n events of typ from ip, one second apart from at, and
// returns the rules of the alerts they fire.
func feed(d *detector, typ core.EventType, ip string, at time.Time, n int) []string {
	var fired []string
	for i := range n {
		ev := core.SecurityEvent{Type: typ, IP: ip, Time: at.Add(time.Duration(i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Rule+" "+a.Source)
		}
	}
	return fired
}

func TestDetectorFiresOncePerCooldown(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	if got := feed(d, core.EventAuthFailure, "192.0.2.1", t0, 9); len(got) != 0 {
		t.Fatalf("9 auth failures fired %v, want nothing", got)
	}
	if got, want := feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(9*time.Second), 1), []string{"auth_failure ip:192.0.2.1"}; !cmp.Equal(got, want) {
		t.Fatalf("10th auth failure fired %v, want %v", got, want)
	}
	// The attack goes on: no new alert within the cooldown...
	if got := feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(10*time.Second), 500); len(got) != 0 {
		t.Fatalf("500 more auth failures within the cooldown fired %v, want nothing", got)
	}
	// ... and one as soon as it is over, since the attack continues.
	after := t0.Add(9*time.Second + DefaultCooldown)
	if got, want := feed(d, core.EventAuthFailure, "192.0.2.1", after, 10), []string{"auth_failure ip:192.0.2.1"}; !cmp.Equal(got, want) {
		t.Fatalf("auth failures after the cooldown fired %v, want %v", got, want)
	}
}

func TestDetectorAlertFields(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	fired := t0.Add(time.Hour)
	var alerts []Alert
	for i := range 5 {
		ev := core.SecurityEvent{Type: core.EventRateLimitExceeded, Principal: "alice", IP: "192.0.2.9", Time: t0.Add(time.Duration(i) * 10 * time.Second)}
		alerts = append(alerts, d.observe(ev, func() time.Time { return fired })...)
	}
	if len(alerts) != 1 {
		t.Fatalf("5 refusals by a rate limit fired %d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	if a.ID == "" {
		t.Error("alert has no ID")
	}
	a.ID = ""
	want := Alert{
		Rule: "rate_limit_exceeded", Source: "principal:alice", Principal: "alice",
		Types: []core.EventType{core.EventRateLimitExceeded}, Count: 5, Threshold: 5, Window: time.Minute,
		FirstAt: t0, LastAt: t0.Add(40 * time.Second), FiredAt: fired,
		Message: "5 rate_limit_exceeded events from principal:alice within 1m0s",
	}
	if diff := cmp.Diff(a, want); diff != "" {
		t.Errorf("alert (-got +want):\n%s", diff)
	}
	ev := a.event()
	if ev.Type != core.EventAlertFired || ev.Severity != core.SeverityCritical || ev.Principal != "alice" || ev.Details["rule"] != "rate_limit_exceeded" || ev.Details["count"] != "5" {
		t.Errorf("alert event = %+v", ev)
	}
}

func TestDetectorSourcesAreIndependent(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	if got := feed(d, core.EventAuthFailure, "192.0.2.1", t0, 9); len(got) != 0 {
		t.Fatalf("9 failures from .1 fired %v", got)
	}
	if got := feed(d, core.EventAuthFailure, "192.0.2.2", t0, 9); len(got) != 0 {
		t.Fatalf("9 failures from .2 fired %v (sources were added up)", got)
	}
	if got, want := feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(10*time.Second), 1), []string{"auth_failure ip:192.0.2.1"}; !cmp.Equal(got, want) {
		t.Fatalf("10th failure from .1 fired %v, want %v", got, want)
	}
	// .1 is cooling down; .2 is not.
	if got, want := feed(d, core.EventAuthFailure, "192.0.2.2", t0.Add(11*time.Second), 1), []string{"auth_failure ip:192.0.2.2"}; !cmp.Equal(got, want) {
		t.Fatalf("10th failure from .2 fired %v, want %v", got, want)
	}
	// A principal is its own source, whatever its address.
	var fired []string
	for i := range 5 {
		ev := core.SecurityEvent{Type: core.EventRateLimitExceeded, Principal: "alice", IP: "192.0.2.3", Time: t0.Add(time.Duration(20+i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Source)
		}
	}
	if want := []string{"principal:alice"}; !cmp.Equal(fired, want) {
		t.Errorf("refusals of alice fired %v, want %v", fired, want)
	}
}

func TestDetectorAuthFailuresCountByAddress(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	// Spraying a new key id with every attempt does not evade the
	// threshold: the claimed principal is not the source.
	var fired []string
	for i := range 10 {
		ev := core.SecurityEvent{Type: core.EventAuthFailure, Principal: fmt.Sprintf("key:%016d", i), IP: "192.0.2.1", Time: t0.Add(time.Duration(i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Source)
		}
	}
	if want := []string{"ip:192.0.2.1"}; !cmp.Equal(fired, want) {
		t.Errorf("10 failures naming 10 keys from one address fired %v, want %v", fired, want)
	}
	// Without an address the claimed principal is all there is.
	fired = nil
	for i := range 10 {
		ev := core.SecurityEvent{Type: core.EventAuthFailure, Principal: "key:abc", Time: t0.Add(time.Duration(i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Source)
		}
	}
	if want := []string{"principal:key:abc"}; !cmp.Equal(fired, want) {
		t.Errorf("10 failures naming one key without an address fired %v, want %v", fired, want)
	}
}

func TestDetectorWindowSlides(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	// 9 failures, then one more a minute after the first: out of the window.
	feed(d, core.EventAuthFailure, "192.0.2.1", t0, 9)
	if got := feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(time.Minute), 1); len(got) != 0 {
		t.Fatalf("a failure a minute after the first of 9 fired %v, want nothing", got)
	}
	// One more half a second later makes 10 within a minute: t0+1s .. t0+8s,
	// t0+60s and t0+60.5s.
	if got := feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(60500*time.Millisecond), 1); len(got) != 1 {
		t.Fatalf("10 failures within a minute fired %v, want one alert", got)
	}
}

func TestDetectorSuspiciousTypesCountTogether(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	var fired []string
	for i, typ := range []core.EventType{core.EventSandboxViolation, core.EventEgressDenied, core.EventInputRejected} {
		ev := core.SecurityEvent{Type: typ, Principal: "mallory", Time: t0.Add(time.Duration(i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Rule)
		}
	}
	if want := []string{"suspicious"}; !cmp.Equal(fired, want) {
		t.Errorf("one event of each suspicious type fired %v, want %v", fired, want)
	}
	// Types no rule counts are not tracked at all.
	feed(d, core.EventKeyCreated, "192.0.2.1", t0, 100)
	if d.len() != 1 {
		t.Errorf("detector keeps %d windows, want 1", d.len())
	}
}

// TestDetectorUserDeniedIsSuspicious: a credential asking for other end
// users' memory three times a minute fires the suspicious rule.
func TestDetectorUserDeniedIsSuspicious(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	var fired []string
	for i := range 3 {
		ev := core.SecurityEvent{Type: core.EventUserDenied, Principal: "key:mallory", Time: t0.Add(time.Duration(i) * time.Second)}
		for _, a := range d.observe(ev, time.Now) {
			fired = append(fired, a.Rule)
		}
	}
	if want := []string{"suspicious"}; !cmp.Equal(fired, want) {
		t.Errorf("three user_denied events fired %v, want %v", fired, want)
	}
}

func TestDetectorOverlappingRules(t *testing.T) {
	rules := append(DefaultRules(), Rule{Name: "slow_brute_force", Types: []core.EventType{core.EventAuthFailure}, Threshold: 3, Window: time.Hour})
	d := mustDetector(t, rules, time.Minute, DefaultMaxSources)
	got := feed(d, core.EventAuthFailure, "192.0.2.1", t0, 10)
	want := []string{"slow_brute_force ip:192.0.2.1", "auth_failure ip:192.0.2.1"}
	if !cmp.Equal(got, want) {
		t.Errorf("10 failures fired %v, want %v", got, want)
	}
}

func TestDetectorOutOfOrderEvents(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, DefaultMaxSources)
	// Events emitted concurrently reach the writer slightly out of order.
	var fired int
	for _, s := range []int{5, 3, 4, 1, 2, 9, 8, 7, 6} {
		fired += len(d.observe(core.SecurityEvent{Type: core.EventAuthFailure, IP: "192.0.2.1", Time: t0.Add(time.Duration(s) * time.Second)}, time.Now))
	}
	// Too old to count: more than a minute before the latest.
	fired += len(d.observe(core.SecurityEvent{Type: core.EventAuthFailure, IP: "192.0.2.1", Time: t0.Add(-time.Minute)}, time.Now))
	if fired != 0 {
		t.Fatalf("fired %d alerts, want none yet", fired)
	}
	if n := len(d.observe(core.SecurityEvent{Type: core.EventAuthFailure, IP: "192.0.2.1", Time: t0}, time.Now)); n != 1 {
		t.Errorf("10th failure in the window fired %d alerts, want 1", n)
	}
}

func TestDetectorMemoryIsBounded(t *testing.T) {
	d := mustDetector(t, DefaultRules(), DefaultCooldown, 100)
	// An attacker with many addresses: never more than 100 windows.
	for i := range 1000 {
		feed(d, core.EventAuthFailure, fmt.Sprintf("10.0.%d.%d", i/256, i%256), t0, 3)
		if d.len() > 100 {
			t.Fatalf("after %d sources the detector keeps %d windows, want at most 100", i+1, d.len())
		}
	}
	if n := d.evicted.Load(); n != 900 {
		t.Errorf("evicted = %d, want 900", n)
	}
	for _, w := range d.windows {
		if n := len(w.Value.(*window).times); n > 10 {
			t.Fatalf("a window keeps %d times, want at most the threshold, 10", n)
		}
	}

	// Idle sources are forgotten once the window and the cooldown are
	// over, without pressure.
	d = mustDetector(t, DefaultRules(), DefaultCooldown, 100)
	for i := range 50 {
		feed(d, core.EventAuthFailure, fmt.Sprintf("10.0.0.%d", i), t0, 10)
	}
	feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(DefaultCooldown), 1)
	if d.len() != 51 {
		t.Errorf("at the end of the cooldown the detector keeps %d windows, want 51", d.len())
	}
	feed(d, core.EventAuthFailure, "192.0.2.1", t0.Add(DefaultCooldown+10*time.Second), 1)
	if d.len() != 1 || d.evicted.Load() != 0 {
		t.Errorf("after the cooldown the detector keeps %d windows (evicted %d), want 1 (0)", d.len(), d.evicted.Load())
	}
}

func TestNewDetectorRefusesBadRules(t *testing.T) {
	good := Rule{Name: "r", Types: []core.EventType{core.EventAuthFailure}, Threshold: 1, Window: time.Second}
	with := func(f func(r *Rule)) []Rule {
		r := good
		r.Types = []core.EventType{core.EventAuthFailure}
		f(&r)
		return []Rule{r}
	}
	for name, rules := range map[string][]Rule{
		"no name":          with(func(r *Rule) { r.Name = "" }),
		"no types":         with(func(r *Rule) { r.Types = nil }),
		"unknown type":     with(func(r *Rule) { r.Types = []core.EventType{"nope"} }),
		"alerts on alerts": with(func(r *Rule) { r.Types = []core.EventType{core.EventAlertFired} }),
		"duplicate type":   with(func(r *Rule) { r.Types = []core.EventType{core.EventAuthFailure, core.EventAuthFailure} }),
		"zero threshold":   with(func(r *Rule) { r.Threshold = 0 }),
		"huge threshold":   with(func(r *Rule) { r.Threshold = MaxThreshold + 1 }),
		"zero window":      with(func(r *Rule) { r.Window = 0 }),
		"huge window":      with(func(r *Rule) { r.Window = MaxWindow + 1 }),
		"duplicate name":   {good, good},
	} {
		if _, err := newDetector(rules, time.Minute, 10); err == nil {
			t.Errorf("newDetector(%s) = nil error", name)
		}
	}
	if _, err := newDetector(nil, time.Minute, 10); err != nil {
		t.Errorf("newDetector(no rules) = %v", err)
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in   string
		want Rule
	}{
		{"auth_failure=20/5m", Rule{Name: "auth_failure", Types: []core.EventType{core.EventAuthFailure}, Threshold: 20, Window: 5 * time.Minute}},
		{" egress_denied=1/1s ", Rule{Name: "egress_denied", Types: []core.EventType{core.EventEgressDenied}, Threshold: 1, Window: time.Second}},
		{"probing:sandbox_violation+egress_denied=2/30s", Rule{Name: "probing", Types: []core.EventType{core.EventSandboxViolation, core.EventEgressDenied}, Threshold: 2, Window: 30 * time.Second}},
		{"client_blocked+key_revoked=3/1h", Rule{Name: "client_blocked+key_revoked", Types: []core.EventType{core.EventClientBlocked, core.EventKeyRevoked}, Threshold: 3, Window: time.Hour}},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.in)
		if err != nil {
			t.Errorf("ParseRule(%q) = %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("ParseRule(%q) (-got +want):\n%s", tt.in, diff)
		}
	}
	for _, in := range []string{
		"", "auth_failure", "auth_failure=10", "auth_failure=10/", "auth_failure=/1m", "auth_failure=x/1m",
		"auth_failure=10/1", "auth_failure=10/-1m", "auth_failure=0/1m", "auth_failure=-1/1m", "auth_failure=1001/1m",
		"auth_failure=10/25h", "nope=10/1m", "alert_fired=1/1m", "=10/1m", "auth_failure+=1/1m",
		"auth_failure+auth_failure=1/1m", "Bad:auth_failure=1/1m", ":auth_failure=1/1m", "a b:auth_failure=1/1m",
	} {
		if r, err := ParseRule(in); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want an error", in, r)
		}
	}
}

func TestParseRules(t *testing.T) {
	got, err := ParseRules([]string{"auth_failure=20/5m", "suspicious=off", "keys:key_revoked=5/1h"})
	if err != nil {
		t.Fatalf("ParseRules = %v", err)
	}
	var specs []string
	for _, r := range got {
		specs = append(specs, r.String())
	}
	want := []string{"auth_failure=20/5m0s", "rate_limit_exceeded=5/1m0s", "keys:key_revoked=5/1h0m0s"}
	if !cmp.Equal(specs, want) {
		t.Errorf("ParseRules = %q, want %q", specs, want)
	}
	def, err := ParseRules(nil)
	if err != nil || !cmp.Equal(def, DefaultRules()) {
		t.Errorf("ParseRules(nil) = %v, %v; want the defaults", def, err)
	}
	for _, specs := range [][]string{{"nope=off"}, {"auth_failure=off", "auth_failure=off"}, {"auth_failure=1"}} {
		if _, err := ParseRules(specs); err == nil {
			t.Errorf("ParseRules(%q) = nil error", specs)
		}
	}
	if got := DefaultRules()[2].String(); got != "suspicious:sandbox_violation+egress_denied+input_rejected+user_denied=3/1m0s" {
		t.Errorf("suspicious rule String() = %q", got)
	}
}

// FuzzParseRule: ParseRule never panics, accepts only valid rules, and
// reads back what String writes.
func FuzzParseRule(f *testing.F) {
	for _, r := range DefaultRules() {
		f.Add(r.String())
	}
	for _, s := range []string{"auth_failure=20/5m", "x:auth_failure=1/1ns", "a=b/c", "::=//", "auth_failure=+5/+1m", "auth_failure=010/1.5m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if strings.Contains(err.Error(), "\x00") && !strings.Contains(s, "\x00") {
				t.Fatalf("error %q holds a NUL not in the input", err)
			}
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("ParseRule(%q) = %+v, which is invalid: %v", s, r, err)
		}
		again, err := ParseRule(r.String())
		if err != nil {
			t.Fatalf("ParseRule(%q).String() = %q, which does not parse: %v", s, r.String(), err)
		}
		if diff := cmp.Diff(again, r); diff != "" {
			t.Fatalf("ParseRule(%q) round trip through %q (-got +want):\n%s", s, r.String(), diff)
		}
	})
}
