package audit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// matches is the reference for what a Filter selects.
func matches(f audit.Filter, r audit.Record) bool {
	return (f.PrincipalID == "" || r.PrincipalID == f.PrincipalID) &&
		(f.Action == "" || r.Action == f.Action) &&
		(f.Resource == "" || r.Resource == f.Resource) &&
		(f.Outcome == "" || r.Outcome == f.Outcome) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until)) &&
		r.Seq > f.AfterSeq
}

func TestRecordsFilterAndPaginate(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	all := mustAppend(t, l, 0, 250, purgeAt)

	filters := []struct {
		name string
		f    audit.Filter
	}{
		{"all", audit.Filter{}},
		{"principal", audit.Filter{PrincipalID: "prn-3"}},
		{"action", audit.Filter{Action: "secret.read"}},
		{"resource", audit.Filter{Resource: "agent/a-5"}},
		{"outcome", audit.Filter{Outcome: audit.OutcomeDenied}},
		{"since", audit.Filter{Since: purgeAt(210)}},
		{"until", audit.Filter{Until: purgeAt(17)}},
		{"range", audit.Filter{Since: purgeAt(100), Until: purgeAt(200)}},
		{"combined", audit.Filter{PrincipalID: "prn-1", Outcome: audit.OutcomeSuccess, Since: purgeAt(50)}},
		{"after", audit.Filter{AfterSeq: 240}},
		{"no match", audit.Filter{PrincipalID: "nobody"}},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			var want []audit.Record
			for _, r := range all {
				if matches(tt.f, r) {
					want = append(want, r)
				}
			}
			// One page of the default size.
			page, err := audit.Records(t.Context(), db, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[:min(len(want), audit.DefaultLimit)], page, cmpEmpty); diff != "" {
				t.Errorf("Records(%+v) (-want +got):\n%s", tt.f, diff)
			}
			// Every page of 7.
			f := tt.f
			f.Limit = 7
			var got []audit.Record
			for {
				page, err := audit.Records(t.Context(), db, f)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, page...)
				if len(page) < 7 {
					break
				}
				f.AfterSeq = page[len(page)-1].Seq
			}
			if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
				t.Errorf("Records(%+v) by pages of 7 (-want +got):\n%s", tt.f, diff)
			}

			var buf bytes.Buffer
			n, err := audit.Export(t.Context(), &buf, db, tt.f)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("Export = %d, %v; want %d", n, err, len(want))
			}
			if diff := cmp.Diff(want, readLines(t, &buf), cmpEmpty); diff != "" {
				t.Errorf("Export(%+v) (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Comparer(func(a, b []audit.Record) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return cmp.Equal(a, b)
})

// readLines decodes JSON lines of records.
func readLines(tb testing.TB, buf *bytes.Buffer) []audit.Record {
	tb.Helper()
	var out []audit.Record
	sc := bufio.NewScanner(buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("line %d: %v: %s", len(out)+1, err, sc.Bytes())
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestExportVerifiesOffline: a full export is a chain that ComputeHash
// checks without the database, and its lines have the documented keys.
func TestExportVerifiesOffline(t *testing.T) {
	db, _ := mustOpen(t)
	l := mustNew(t, db, audit.Options{})
	mustAppendConcurrent(t, l, 2*audit.MaxLimit+3) // three pages
	var buf bytes.Buffer
	if _, err := audit.Export(t.Context(), &buf, db, audit.Filter{Limit: 5}); err != nil {
		t.Fatal(err)
	}
	var first map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seq", "time", "principal_id", "key_id", "subject", "action", "resource", "outcome", "ip", "user_agent", "request_id", "details", "prev_hash", "hash"} {
		if _, ok := first[k]; !ok {
			t.Errorf("exported line has no %q: %v", k, first)
		}
	}
	recs := readLines(t, &buf)
	if len(recs) != 2*audit.MaxLimit+3 {
		t.Fatalf("exported %d records, want %d (Limit is ignored)", len(recs), 2*audit.MaxLimit+3)
	}
	prev := make([]byte, 32)
	for i := range recs {
		r := &recs[i]
		if r.Seq != int64(i+1) || !bytes.Equal(r.PrevHash, prev) || !bytes.Equal(r.ComputeHash(), r.Hash) {
			t.Fatalf("exported record %d does not chain", r.Seq)
		}
		prev = r.Hash
	}
}

func TestRecordsRefusesBadFilter(t *testing.T) {
	db, _ := mustOpen(t)
	for _, f := range []audit.Filter{
		{Limit: -1},
		{AfterSeq: -1},
		{Since: purgeAt(10), Until: purgeAt(5)},
		{PrincipalID: "\xff"},
		{Action: "a\x00b"},
	} {
		_, err := audit.Records(t.Context(), db, f)
		if e, ok := errors.AsType[*core.Error](err); !ok || e.Code != core.CodeValidation {
			t.Errorf("Records(%+v) = %v, want a validation error", f, err)
		}
	}
}

func TestParseFilter(t *testing.T) {
	since := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		query string
		want  audit.Filter
		field string // of the error, if one is wanted
	}{
		{query: "", want: audit.Filter{}},
		{
			query: "principal_id=prn-1&action=key.create&resource=agent%2Fa1&outcome=denied&since=2030-01-02T03:04:05.0000006Z&until=2030-01-02T05:00:00%2B01:00&after=42&limit=10",
			want: audit.Filter{
				PrincipalID: "prn-1", Action: "key.create", Resource: "agent/a1", Outcome: "denied",
				Since: since, Until: time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC), AfterSeq: 42, Limit: 10,
			},
		},
		{query: "limit=5000", want: audit.Filter{Limit: 5000}},
		{query: "principal=x", field: "principal"},
		{query: "action=a&action=b", field: "action"},
		{query: "since=yesterday", field: "since"},
		{query: "since=3000-01-01T00:00:00Z", field: "since"},
		{query: "after=-1", field: "after"},
		{query: "after=x", field: "after"},
		{query: "limit=-5", field: "limit"},
		{query: "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z", field: "until"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := audit.ParseFilter(q)
			if tt.field != "" {
				if e, ok := errors.AsType[*core.Error](err); !ok || e.Code != core.CodeValidation || e.Field != tt.field {
					t.Errorf("ParseFilter(%q) = %v, want a validation error on %q", tt.query, err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilter(%q) = %v", tt.query, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFilter(%q) (-want +got):\n%s", tt.query, diff)
			}
			back, err := audit.ParseFilter(got.Values())
			if err != nil || !cmp.Equal(back, got) {
				t.Errorf("ParseFilter(Values()) = %+v, %v; want %+v", back, err, got)
			}
		})
	}
}
