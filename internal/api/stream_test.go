package api

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

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
