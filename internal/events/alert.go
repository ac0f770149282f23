package events

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Alerting defaults and limits.
const (
	// DefaultCooldown is how long an alert is not sent again for the same
	// rule and source.
	DefaultCooldown = 10 * time.Minute
	// DefaultMaxSources bounds the (rule, source) windows kept in memory;
	// beyond it the least recently seen is forgotten.
	DefaultMaxSources = 10000
	// MaxThreshold bounds a rule's threshold, and with it the event times
	// a window keeps: memory is at most MaxSources × threshold times.
	MaxThreshold = 1000
	// MaxWindow bounds a rule's window.
	MaxWindow = 24 * time.Hour
)

// Rule fires an alert when Threshold events of its Types come from one
// source within Window. The source of an event is its Principal, or if it
// has none its IP; for an auth_failure, whose Principal is only claimed,
// its IP if it has one.
type Rule struct {
	// Name identifies the rule in alerts and in ParseRules.
	Name      string
	Types     []core.EventType
	Threshold int
	Window    time.Duration
}

// SuspiciousTypes are the event types that mean an agent or a client is
// probing the sandbox or the API (or other end users' memory); the
// default "suspicious" rule counts them together.
var SuspiciousTypes = []core.EventType{core.EventSandboxViolation, core.EventEgressDenied, core.EventInputRejected, core.EventUserDenied}

// DefaultRules returns the default alert rules: per source and minute, 10
// authentication failures, 5 refusals by a rate limit, or 3 suspicious
// events (of SuspiciousTypes, together).
func DefaultRules() []Rule {
	return []Rule{
		{Name: string(core.EventAuthFailure), Types: []core.EventType{core.EventAuthFailure}, Threshold: 10, Window: time.Minute},
		{Name: string(core.EventRateLimitExceeded), Types: []core.EventType{core.EventRateLimitExceeded}, Threshold: 5, Window: time.Minute},
		{Name: "suspicious", Types: slices.Clone(SuspiciousTypes), Threshold: 3, Window: time.Minute},
	}
}

// defaultName is the name of a rule written without one: its types,
// joined by "+".
func defaultName(types []core.EventType) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, "+")
}

// String returns r in the form ParseRule reads.
func (r Rule) String() string {
	s := defaultName(r.Types)
	if r.Name != s {
		s = r.Name + ":" + s
	}
	return s + "=" + strconv.Itoa(r.Threshold) + "/" + r.Window.String()
}

// ParseRule parses a rule written as
//
//	[NAME:]TYPE[+TYPE...]=THRESHOLD/WINDOW
//
// for instance "auth_failure=20/5m" or
// "probing:sandbox_violation+egress_denied=2/30s". Without a NAME the rule
// is named after its types, joined by "+". NAME is lower-case letters,
// digits and underscores; WINDOW is a Go duration.
func ParseRule(s string) (Rule, error) {
	spec := strings.TrimSpace(s)
	lhs, rhs, ok := strings.Cut(spec, "=")
	if !ok {
		return Rule{}, fmt.Errorf("alert rule %q: want [NAME:]TYPE[+TYPE...]=THRESHOLD/WINDOW", s)
	}
	var r Rule
	name, types, named := strings.Cut(lhs, ":")
	if !named {
		types = lhs
	}
	for t := range strings.SplitSeq(types, "+") {
		r.Types = append(r.Types, core.EventType(t))
	}
	r.Name = defaultName(r.Types)
	if named {
		if !validName(name) {
			return Rule{}, fmt.Errorf("alert rule %q: name must be lower-case letters, digits and underscores", s)
		}
		r.Name = name
	}
	count, window, ok := strings.Cut(rhs, "/")
	if !ok {
		return Rule{}, fmt.Errorf("alert rule %q: want THRESHOLD/WINDOW after =", s)
	}
	var err error
	if r.Threshold, err = strconv.Atoi(count); err != nil {
		return Rule{}, fmt.Errorf("alert rule %q: threshold is not a number", s)
	}
	if r.Window, err = time.ParseDuration(window); err != nil {
		return Rule{}, fmt.Errorf("alert rule %q: window is not a duration like 1m or 30s", s)
	}
	if err := r.validate(); err != nil {
		return Rule{}, fmt.Errorf("alert rule %q: %w", s, err)
	}
	return r, nil
}

// ParseRules returns DefaultRules with specs applied in order. A spec
// ParseRule reads replaces the rule of the same name or adds one;
// "NAME=off" removes the rule NAME. So ["auth_failure=20/5m",
// "suspicious=off"] loosens one default and drops another.
func ParseRules(specs []string) ([]Rule, error) {
	rules := DefaultRules()
	for _, spec := range specs {
		if name, ok := strings.CutSuffix(strings.TrimSpace(spec), "=off"); ok {
			i := slices.IndexFunc(rules, func(r Rule) bool { return r.Name == name })
			if i < 0 {
				return nil, fmt.Errorf("alert rule %q: no rule named %q", spec, name)
			}
			rules = slices.Delete(rules, i, i+1)
			continue
		}
		r, err := ParseRule(spec)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(rules, func(o Rule) bool { return o.Name == r.Name }); i >= 0 {
			rules[i] = r
		} else {
			rules = append(rules, r)
		}
	}
	return rules, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (r Rule) validate() error {
	switch {
	case r.Name == "":
		return errors.New("rule has no name")
	case len(r.Types) == 0:
		return errors.New("rule counts no event types")
	case r.Threshold < 1 || r.Threshold > MaxThreshold:
		return fmt.Errorf("threshold %d is not between 1 and %d", r.Threshold, MaxThreshold)
	case r.Window <= 0 || r.Window > MaxWindow:
		return fmt.Errorf("window %v is not positive and at most %v", r.Window, MaxWindow)
	}
	for i, t := range r.Types {
		switch {
		case !t.Valid():
			return fmt.Errorf("unknown event type %q", t)
		case t == core.EventAlertFired:
			// An alert counting alerts would feed itself.
			return fmt.Errorf("event type %q cannot be counted", t)
		case slices.Contains(r.Types[:i], t):
			return fmt.Errorf("event type %q is listed twice", t)
		}
	}
	return nil
}

// Alert is what a rule firing sends to the sinks.
type Alert struct {
	ID   string
	Rule string
	// Source is "principal:<id>", "ip:<address>" or "unknown"; Principal
	// and IP are the parts it was made of.
	Source, Principal, IP string
	Types                 []core.EventType
	Count, Threshold      int           // Count events within Window crossed Threshold
	Window                time.Duration //
	FirstAt, LastAt       time.Time     // of the counted events
	FiredAt               time.Time
	Message               string
}

// alertJSON is an Alert as sinks send it.
type alertJSON struct {
	ID            string           `json:"alert_id"`
	Rule          string           `json:"rule"`
	Source        string           `json:"source"`
	Principal     string           `json:"principal,omitempty"`
	IP            string           `json:"ip,omitempty"`
	Types         []core.EventType `json:"event_types"`
	Count         int              `json:"count"`
	Threshold     int              `json:"threshold"`
	WindowSeconds float64          `json:"window_seconds"`
	FirstAt       time.Time        `json:"first_event_at"`
	LastAt        time.Time        `json:"last_event_at"`
	FiredAt       time.Time        `json:"fired_at"`
	Message       string           `json:"message"`
}

// MarshalJSON encodes a with snake_case names and the window in seconds.
func (a Alert) MarshalJSON() ([]byte, error) {
	return json.Marshal(alertJSON{
		ID: a.ID, Rule: a.Rule, Source: a.Source, Principal: a.Principal, IP: a.IP, Types: a.Types,
		Count: a.Count, Threshold: a.Threshold, WindowSeconds: a.Window.Seconds(),
		FirstAt: a.FirstAt, LastAt: a.LastAt, FiredAt: a.FiredAt, Message: a.Message,
	})
}

// UnmarshalJSON is the inverse of MarshalJSON, for receivers written in
// Go and for tests.
func (a *Alert) UnmarshalJSON(b []byte) error {
	var j alertJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Alert{
		ID: j.ID, Rule: j.Rule, Source: j.Source, Principal: j.Principal, IP: j.IP, Types: j.Types,
		Count: j.Count, Threshold: j.Threshold, Window: time.Duration(j.WindowSeconds * float64(time.Second)),
		FirstAt: j.FirstAt, LastAt: j.LastAt, FiredAt: j.FiredAt, Message: j.Message,
	}
	return nil
}

// event is the alert_fired event that records a.
func (a Alert) event() core.SecurityEvent {
	return core.SecurityEvent{
		ID: newID(), Time: a.FiredAt, Type: core.EventAlertFired, Severity: core.SeverityCritical,
		Principal: a.Principal, IP: a.IP, Message: a.Message,
		Details: map[string]string{
			"alert_id":       a.ID,
			"rule":           a.Rule,
			"source":         a.Source,
			"count":          strconv.Itoa(a.Count),
			"threshold":      strconv.Itoa(a.Threshold),
			"window":         a.Window.String(),
			"first_event_at": a.FirstAt.Format(time.RFC3339Nano),
			"last_event_at":  a.LastAt.Format(time.RFC3339Nano),
		},
	}
}

// detector keeps, for each rule and source, the times of the latest
// events in the rule's window, and decides when a rule fires. It is not
// safe for concurrent use: the emitter's writer goroutine owns it.
//
// Its memory is bounded: a window is forgotten once its source has been
// idle for longer than the longest window and the cooldown (it then holds
// nothing that matters), or, past max windows, the least recently seen
// one is, which may let that source alert again before its cooldown ends.
type detector struct {
	rules    []Rule
	byType   map[core.EventType][]int // indexes into rules
	cooldown time.Duration
	max      int
	horizon  time.Duration

	windows map[windowKey]*list.Element // of *window
	lru     *list.List                  // most recently seen first
	// evicted counts windows forgotten before they were idle; Stats reads
	// it from other goroutines.
	evicted atomic.Uint64
}

type windowKey struct {
	rule   int
	source string
}

type window struct {
	key       windowKey
	times     []time.Time // sorted; at most the rule's threshold, all within its window
	lastSeen  time.Time
	lastFired time.Time // zero: never
}

func newDetector(rules []Rule, cooldown time.Duration, maxWindows int) (*detector, error) {
	d := &detector{
		rules: slices.Clone(rules), byType: map[core.EventType][]int{}, cooldown: cooldown, max: maxWindows,
		horizon: cooldown, windows: map[windowKey]*list.Element{}, lru: list.New(),
	}
	for i, r := range d.rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("alert rule %q: %w", r.Name, err)
		}
		if slices.ContainsFunc(d.rules[:i], func(o Rule) bool { return o.Name == r.Name }) {
			return nil, fmt.Errorf("alert rule %q: defined twice", r.Name)
		}
		d.rules[i].Types = slices.Clone(r.Types)
		for _, t := range r.Types {
			d.byType[t] = append(d.byType[t], i)
		}
		d.horizon = max(d.horizon, r.Window)
	}
	return d, nil
}

// source returns who an event counts against: its principal, or if it has
// none its IP. The principal of an authentication failure is only what
// the credential claimed, which an attacker chooses freely (spraying key
// ids from one address would otherwise never reach a threshold), so for
// those the IP comes first.
func source(ev core.SecurityEvent) (src, principal, ip string) {
	switch {
	case ev.Type == core.EventAuthFailure && ev.IP != "":
		return "ip:" + ev.IP, "", ev.IP
	case ev.Principal != "":
		return "principal:" + ev.Principal, ev.Principal, ""
	case ev.IP != "":
		return "ip:" + ev.IP, "", ev.IP
	}
	return "unknown", "", ""
}

// observe counts ev and returns the alerts it fires. now stamps them.
func (d *detector) observe(ev core.SecurityEvent, now func() time.Time) []Alert {
	idxs := d.byType[ev.Type]
	if len(idxs) == 0 {
		return nil
	}
	d.expire(ev.Time)
	src, principal, ip := source(ev)
	var out []Alert
	for _, i := range idxs {
		r := d.rules[i]
		w := d.window(windowKey{i, src}, ev.Time)
		w.add(ev.Time, r)
		if len(w.times) < r.Threshold || !w.lastFired.IsZero() && ev.Time.Sub(w.lastFired) < d.cooldown {
			continue
		}
		w.lastFired = ev.Time
		out = append(out, Alert{
			ID: newID(), Rule: r.Name, Source: src, Principal: principal, IP: ip,
			Types: slices.Clone(r.Types), Count: len(w.times), Threshold: r.Threshold, Window: r.Window,
			FirstAt: w.times[0], LastAt: w.times[len(w.times)-1], FiredAt: now().UTC(),
			Message: fmt.Sprintf("%d %s events from %s within %v", len(w.times), r.Name, src, r.Window),
		})
	}
	return out
}

// add records an event at t, keeping the times within r.Window of the
// latest and at most r.Threshold of them: enough to tell whether the
// threshold is reached.
func (w *window) add(t time.Time, r Rule) {
	// Events usually arrive in order; insert in place if one did not.
	i := len(w.times)
	for i > 0 && w.times[i-1].After(t) {
		i--
	}
	w.times = slices.Insert(w.times, i, t)
	latest := w.times[len(w.times)-1]
	drop := 0
	for drop < len(w.times) && !w.times[drop].After(latest.Add(-r.Window)) {
		drop++
	}
	drop = max(drop, len(w.times)-r.Threshold)
	w.times = slices.Delete(w.times, 0, drop)
}

// window returns the window of k, creating it, and marks it seen at t.
func (d *detector) window(k windowKey, t time.Time) *window {
	if el, ok := d.windows[k]; ok {
		w := el.Value.(*window)
		if t.After(w.lastSeen) {
			w.lastSeen = t
		}
		d.lru.MoveToFront(el)
		return w
	}
	for len(d.windows) >= d.max {
		d.remove(d.lru.Back())
		d.evicted.Add(1)
	}
	w := &window{key: k, lastSeen: t}
	d.windows[k] = d.lru.PushFront(w)
	return w
}

// expire forgets the windows idle for longer than the horizon at now.
func (d *detector) expire(now time.Time) {
	for el := d.lru.Back(); el != nil; el = d.lru.Back() {
		if now.Sub(el.Value.(*window).lastSeen) <= d.horizon {
			return
		}
		d.remove(el)
	}
}

func (d *detector) remove(el *list.Element) {
	delete(d.windows, el.Value.(*window).key)
	d.lru.Remove(el)
}

// len returns how many windows the detector keeps.
func (d *detector) len() int { return len(d.windows) }
