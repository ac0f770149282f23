package audit_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/audit"
)

// FuzzParseFilter: any query either fails or gives a valid Filter that
// survives a round trip through Values.
func FuzzParseFilter(f *testing.F) {
	for _, q := range []string{
		"",
		"principal_id=prn-1&action=key.create&resource=agent%2Fa1&outcome=denied",
		"since=2030-01-02T03:04:05.000000006Z&until=2030-01-02T05:00:00%2B01:00&after=42&limit=10",
		"limit=99999999999999999999",
		"after=-1&since=0001-01-01T00:00:00Z",
		"action=%ff%00",
		"x=1&x=2",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		flt, err := audit.ParseFilter(q)
		if err != nil {
			return
		}
		if err := flt.Validate(); err != nil {
			t.Fatalf("ParseFilter(%q) = %+v, which Validate refuses: %v", query, flt, err)
		}
		if n := flt.PageSize(); n < 1 || n > audit.MaxLimit {
			t.Fatalf("ParseFilter(%q).PageSize() = %d", query, n)
		}
		back, err := audit.ParseFilter(flt.Values())
		if err != nil {
			t.Fatalf("ParseFilter(%q).Values() does not parse: %v", query, err)
		}
		if diff := cmp.Diff(flt, back); diff != "" {
			t.Fatalf("ParseFilter(%q) round trip (-first +second):\n%s", query, diff)
		}
	})
}

// FuzzRecordJSON: decoding a line of an export never panics, and what
// decodes encodes back to the same record.
func FuzzRecordJSON(f *testing.F) {
	f.Add(`{"seq":1,"time":"2030-01-01T00:00:00Z","action":"key.create","outcome":"success","details":{"a":"b"},"prev_hash":"00","hash":"ff"}`)
	f.Add(`{"seq":-1,"time":"not a time"}`)
	f.Add(`{"prev_hash":"zz"}`)
	f.Add(`{"details":{}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, line string) {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", r, err)
		}
		var back audit.Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s) = %v", b, err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", line, diff)
		}
	})
}
