package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// FuzzSSE checks that the SSE parser never panics and that it finds the
// same events however the input is split into reads (line ends, CRLF
// pairs and BOMs cut across reads are where parsers go wrong).
func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"event: data\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n",
		": comment\rdata:x\r\r",
		"\uFEFFdata: a\n\nid: 2\x00\ndata\n\n",
		"data: a\r\n\ndata: b\n\r",
		"retry: 5\nevent: e\n\n",
		"id: 3\n\ndata: a\n\nid\ndata: b\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return // longer inputs cover nothing more and slow minimization
		}
		const max = 1 << 10
		whole, err1 := readSSE(bytes.NewReader(in), max)
		bytewise, err2 := readSSE(iotest.OneByteReader(bytes.NewReader(in)), max)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("errors differ: whole %v, one byte at a time %v", err1, err2)
		}
		if err1 == nil {
			if d := cmp.Diff(whole, bytewise); d != "" {
				t.Fatalf("events differ by read size (-whole +bytewise):\n%s", d)
			}
		}
		for _, ev := range whole {
			if ev.Type == "" || len(ev.Data) > max {
				t.Fatalf("bad event %+v", ev)
			}
		}
	})
}

// FuzzEnvelope checks that any response body and status give either an
// envelope holding a valid JSON value or an error, never a panic, and
// that every non-2xx status is an *Error with that status.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"success": true, "data": "{\"type\": \"integer\", \"payload\": \"1\"}", "request_id": "r"}`,
		`{"success": true, "data": "{\"type\": \"object\", \"payload\": \"[1]\"}"}`,
		`{"success": true, "data": {"a": 1}}`,
		`{"success": false, "error": {"code": "X", "message": "m", "details": {"a": 1}, "field": "f"}}`,
		`{"success": false, "data": null, "message": "ValueError: x", "error": {"code": "AGENT_ERROR", "message": "ValueError: x", "details": {"type": "ValueError", "traceback": "T", "exit_code": null}, "field": null}, "invocation_id": "i"}`,
		`{"success": true, "data": "{\"type\": \"string\", \"payload\": \"\\\"\\ud800\\\"\"}"}`,
		`{"success": false, "error": "text"}`,
		`{"success": false, "error": 12}`,
		`<html>502</html>`,
		``,
		`null`,
		`[]`,
	} {
		f.Add(200, []byte(s))
		f.Add(502, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		h := http.Header{"Content-Type": {"application/json"}}
		env, err := decodeEnvelope(status, h, body)
		if status < 200 || status > 299 {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Status != status {
				t.Fatalf("status %d: error %v (%T), want *Error with that status", status, err, err)
			}
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if !*env.Success {
			t.Fatal("success:false accepted")
		}
		if v := decodeValue(env.Data); !json.Valid(v) {
			t.Fatalf("decoded value %q is not valid JSON", v)
		}
	})
}

// FuzzStreamFrame checks that any stream message gives a valid JSON
// chunk, the end, an error or nothing, and never a panic.
func FuzzStreamFrame(f *testing.F) {
	for _, s := range []string{
		`{"type": "status", "status": "stream_started", "invocation_id": "i"}`,
		`{"type": "data", "content": "{\"type\": \"string\", \"payload\": \"\\\"x\\\"\"}"}`,
		`{"type": "data", "content": {"a": 1}}`,
		`{"type": "status", "status": "stream_completed", "total_chunks": 2, "execution_time": 1e300}`,
		`{"type": "error", "error": {"code": "AGENT_ERROR", "message": "boom"}}`,
		`{"type": "error", "error": "boom", "code": "AGENT_ERROR", "details": {"type": "ValueError"}, "field": null, "invocation_id": "i"}`,
		`{"type": "error", "error": "no", "detail": "no", "code": "NOT_FOUND", "field": "entrypoint_tag"}`,
		`{"type": "error", "detail": "Entrypoint x not found"}`,
		`{"type": "error", "error": "\ud800", "code": 7, "field": 1}`,
		`{"type": "status", "status": "FAILED"}`,
		`{"content": "1"}`,
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "data")
	}
	f.Fuzz(func(t *testing.T, raw []byte, event string) {
		s := &Stream{cancel: func() {}, release: func() {}, ctxErr: context.Background().Err}
		chunk, fin, err := s.handle(raw, event)
		if chunk != nil && !json.Valid(chunk) {
			t.Fatalf("chunk %q is not valid JSON", chunk)
		}
		if err != nil && (chunk != nil || fin) {
			t.Fatalf("error %v together with a chunk or the end", err)
		}
		if sum, ok := s.Summary(); ok != fin || sum.ExecutionTime < 0 {
			t.Fatalf("summary %+v, %v after fin=%v", sum, ok, fin)
		}
	})
}
