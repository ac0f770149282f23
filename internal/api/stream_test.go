package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// TestErrorFrameShape: error is the message as a string (RunAgent's Python
// SDK calls string methods on it), the error object's fields are beside
// it, and a missing entrypoint also has detail.
func TestErrorFrameShape(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want map[string]any
	}{
		{
			name: "agent error",
			err:  &invocationError{id: "inv1", err: &core.Error{Code: core.CodeAgentError, Message: "ValueError: boom", Details: map[string]any{"type": "ValueError"}}},
			want: map[string]any{"type": "error", "error": "ValueError: boom", "code": "AGENT_ERROR", "details": map[string]any{"type": "ValueError"}, "field": nil, "invocation_id": "inv1"},
		},
		{
			name: "missing entrypoint",
			err:  &core.Error{Code: core.CodeNotFound, Field: "entrypoint_tag", Message: "entrypoint x not found"},
			want: map[string]any{"type": "error", "error": "entrypoint x not found", "detail": "entrypoint x not found", "code": "NOT_FOUND", "details": nil, "field": "entrypoint_tag"},
		},
		{
			name: "internal error says nothing more",
			err:  &core.Error{Code: core.CodeInternal, Message: "secret path /x", Details: "detail"},
			want: map[string]any{"type": "error", "error": "internal error", "code": "INTERNAL_ERROR", "details": nil, "field": nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(errFrame(tt.err))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			json.Unmarshal(b, &got)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("frame %s (-want +got):\n%s", b, d)
			}
		})
	}
}

// TestRefusedUpgradeAnswersWithEnvelope: a WebSocket handshake the
// gateway refuses (a viewer may not stream; no credential) answers with
// its status and the JSON envelope, not a bare "bad handshake".
func TestRefusedUpgradeAnswersWithEnvelope(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(w.api)
	defer srv.Close()
	for _, tc := range []struct {
		cred string
		want int
		code string
	}{
		{"viewer", http.StatusForbidden, core.CodeForbidden},
		{"", http.StatusUnauthorized, core.CodeUnauthorized},
	} {
		t.Run("cred="+tc.cred, func(t *testing.T) {
			h := http.Header{}
			if tok := w.keys[tc.cred]; tok != "" {
				h.Set("Authorization", "Bearer "+tok)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/agents/"+agentP1+"/run-stream", &websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				c.CloseNow()
				t.Fatal("the handshake succeeded")
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			var env struct {
				Success *bool `json:"success"`
				Error   struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if resp.StatusCode != tc.want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				json.Unmarshal(body, &env) != nil || env.Success == nil || *env.Success || env.Error.Code != tc.code || env.Error.Message == "" {
				t.Errorf("answer %d %q %s, want %d with a %s envelope", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want, tc.code)
			}
		})
	}
}

// TestWebSocketErrorFrame: over a real socket, a failed stream sends one
// error frame in RunAgent's shape, closes with 1003, and its audit
// record says it failed.
func TestWebSocketErrorFrame(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(w.api)
	defer srv.Close()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+w.keys["user"])
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/agents/"+agentP1+"/run-stream", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("a user may stream: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"entrypoint_tag": "nope_stream"}`)); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(msg, &f); err != nil {
		t.Fatal(err)
	}
	if s, ok := f["error"].(string); !ok || !strings.Contains(s, "nope_stream") || f["detail"] != s || f["code"] != "NOT_FOUND" || f["field"] != "entrypoint_tag" {
		t.Errorf("frame %s, want error and detail as the message string, code NOT_FOUND, field entrypoint_tag", msg)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("after the error frame: %v, want a close with 1003", err)
	}
	c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// The record is written when the handler returns, after the close.
		recs := w.trail(audit.Filter{Action: "invocation.stream"})
		if slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Outcome == "not_found" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation.stream records %+v, want one with outcome not_found", recs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
