package api

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/ratelimit"
)

// seedInvocationRows inserts n finished invocations of p1's two agents
// and p2's, a millisecond apart, for ten end users, with one statement
// through a connection of its own to the world's database file. Their
// payloads are stored as plain JSON (the store reads rows written before
// sealing existed that way), so the decryption a sealed row costs is not
// in this benchmark: BenchmarkInvocationPage in internal/store/sqlite
// measures the store's pages with sealed payloads.
func seedInvocationRows(b *testing.B, w *world, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+w.store.Path()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	_, err = db.ExecContext(b.Context(), `
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?)
INSERT INTO invocations (id, agent_id, project_id, agent_version, entrypoint_tag, streaming, transport, status,
	caller, user_id, input_args, input_kwargs, output, chunks, logs, error_code, error_message,
	created_at, completed_at, duration_ms, node_id)
SELECT printf('inv-%06d', i),
	CASE i % 3 WHEN 0 THEN ? WHEN 1 THEN ? ELSE ? END,
	CASE i % 3 WHEN 1 THEN 'p2' ELSE 'p1' END,
	'sha256:aaaa', 'echo', 0, 'rest', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
	'key:k1', printf('user-%d', i % 10), '["hello"]', '{"temperature":0.2}', '{"answer":"hi there"}', 0,
	'step 1' || char(10) || 'step 2', '', '',
	? + i * 1000000, ? + i * 1000000 + 12000000, 12, ''
FROM seq`, n, agentP1, agentP2, openID, start, start)
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInvocationListHTTP pages through 100,000 invocation records 50
// at a time over loopback HTTP as the console does: GET
// /api/v1/invocations with an owner's API key (authenticated, rate
// limited, audited durably before the answer), each op the next page by
// next_cursor, from the first again at the end. It reports the median
// and 99th percentile of a page, request sent to body read (target: ≤
// 100 ms a page).
func BenchmarkInvocationListHTTP(b *testing.B) {
	const n = 100_000
	w := newWorld(b)
	w.limited(ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000})
	seedInvocationRows(b, w, n)
	srv := httptest.NewServer(w.api)
	b.Cleanup(srv.Close)
	client := srv.Client()
	for _, bc := range []struct{ name, query string }{
		{"all", "limit=50"},
		{"agent-status", "limit=50&agent_id=" + agentP2 + "&status=completed"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var took []time.Duration
			cursor := ""
			for b.Loop() {
				u := srv.URL + "/api/v1/invocations?" + bc.query
				if cursor != "" {
					u += "&cursor=" + url.QueryEscape(cursor)
				}
				req, _ := http.NewRequestWithContext(b.Context(), "GET", u, nil)
				req.Header.Set("Authorization", "Bearer "+w.keys["owner"])
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				took = append(took, time.Since(t0))
				if err != nil || res.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
				}
				var env struct {
					Data struct {
						Count      int    `json:"count"`
						NextCursor string `json:"next_cursor"`
					} `json:"data"`
				}
				if err := json.Unmarshal(body, &env); err != nil || env.Data.Count == 0 && cursor == "" {
					b.Fatalf("GET %s: %v, %d invocations", u, err, env.Data.Count)
				}
				cursor = env.Data.NextCursor
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
