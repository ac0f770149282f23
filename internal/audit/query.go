package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Page sizes of Filter.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects records. Empty fields match everything; records are
// listed in seq order, oldest first.
type Filter struct {
	PrincipalID string
	Action      string
	Resource    string
	Outcome     string
	Since       time.Time // inclusive; zero: unbounded
	Until       time.Time // exclusive; zero: unbounded
	// AfterSeq is the pagination cursor: only records with a greater Seq
	// match. The next page starts after the last record of this one.
	AfterSeq int64
	// Limit is the page size: 0 means DefaultLimit, and more than
	// MaxLimit means MaxLimit.
	Limit int
}

// Validate reports what is wrong with f, as a core.CodeValidation error:
// a negative limit or cursor, a string field that is not UTF-8 or holds a
// NUL or is longer than MaxFieldBytes, or Until before Since.
func (f Filter) Validate() error {
	switch {
	case f.Limit < 0:
		return invalid("limit", "limit must not be negative")
	case f.AfterSeq < 0:
		return invalid("after", "after must not be negative")
	case !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since):
		return invalid("until", "until must not be before since")
	}
	for _, v := range []struct{ name, v string }{
		{"principal_id", f.PrincipalID}, {"action", f.Action}, {"resource", f.Resource}, {"outcome", f.Outcome},
	} {
		if len(v.v) > MaxFieldBytes || !utf8.ValidString(v.v) || strings.IndexByte(v.v, 0) >= 0 {
			return invalid(v.name, "%s must be at most %d bytes of UTF-8 without NUL", v.name, MaxFieldBytes)
		}
	}
	return nil
}

// PageSize returns the number of records a page of f holds at most.
func (f Filter) PageSize() int {
	if f.Limit <= 0 {
		return DefaultLimit
	}
	return min(f.Limit, MaxLimit)
}

// filterParams are the query parameters of ParseFilter, in Values order.
var filterParams = []string{"principal_id", "action", "resource", "outcome", "since", "until", "after", "limit"}

// ParseFilter reads a Filter from URL query parameters, as an HTTP API
// receives it: principal_id, action, resource, outcome, since and until
// (RFC 3339), after (a seq) and limit. An unknown or repeated parameter,
// or a value that does not parse or that Validate refuses, is a
// core.CodeValidation error naming it.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for name, vs := range q {
		if !slices.Contains(filterParams, name) {
			return Filter{}, invalid(name, "unknown parameter %q", name)
		}
		if len(vs) != 1 {
			return Filter{}, invalid(name, "parameter %q is given %d times", name, len(vs))
		}
		v := vs[0]
		var err error
		switch name {
		case "principal_id":
			f.PrincipalID = v
		case "action":
			f.Action = v
		case "resource":
			f.Resource = v
		case "outcome":
			f.Outcome = v
		case "since":
			f.Since, err = parseTime(v)
		case "until":
			f.Until, err = parseTime(v)
		case "after":
			f.AfterSeq, err = strconv.ParseInt(v, 10, 64)
		case "limit":
			f.Limit, err = strconv.Atoi(v)
		}
		if err != nil {
			return Filter{}, invalid(name, "parameter %q does not parse", name)
		}
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// parseTime parses an RFC 3339 time that unix nanoseconds can hold.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	t = t.UTC()
	if !time.Unix(0, t.UnixNano()).Equal(t) {
		return time.Time{}, fmt.Errorf("time %s is out of range", s)
	}
	return t, nil
}

// Values returns f as the query parameters ParseFilter reads; empty
// fields are left out. A link to the next page is f with AfterSeq set to
// the last Seq of this one.
func (f Filter) Values() url.Values {
	q := url.Values{}
	for _, p := range []struct{ name, v string }{
		{"principal_id", f.PrincipalID}, {"action", f.Action}, {"resource", f.Resource}, {"outcome", f.Outcome},
	} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.AfterSeq != 0 {
		q.Set("after", strconv.FormatInt(f.AfterSeq, 10))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// Records returns one page of the records matching f from s, in seq
// order; a page shorter than f.PageSize() is the last.
func Records(ctx context.Context, s Store, f Filter) ([]Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	recs, err := s.AuditRecords(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("audit: records: %w", err)
	}
	return recs, nil
}

// Export writes every record matching f (f.Limit is ignored) from s to w
// as JSON lines, one Record.MarshalJSON object per line in seq order,
// reading MaxLimit records at a time, and returns how many it wrote.
// Records appended while it runs are included if they match.
func Export(ctx context.Context, w io.Writer, s Store, f Filter) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	f.Limit = MaxLimit
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var n int64
	for {
		page, err := s.AuditRecords(ctx, f)
		if err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		for i := range page {
			if err := enc.Encode(page[i]); err != nil {
				return n, fmt.Errorf("audit: export: %w", err)
			}
			n++
		}
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		if len(page) < MaxLimit {
			return n, nil
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}
