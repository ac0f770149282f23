package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzControlAPI sends arbitrary bodies to the control API's decoders as
// an owner: every answer is a 2xx or a 4xx in the error envelope, never a
// 500 or a panic.
func FuzzControlAPI(f *testing.F) {
	w := newWorld(f)
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/keys"},
		{"POST", "/api/v1/projects"},
		{"PATCH", "/api/v1/projects/p1"},
		{"POST", "/api/v1/keys/" + w.keys["viewer"][4:20] + "/rotate"},
	}
	f.Add(uint8(0), []byte(`{"name":"n","role":"viewer","rate_limit":{"requests":5,"period_seconds":60}}`))
	f.Add(uint8(0), []byte(`{"name":"n","scopes":["read","nope"],"agents":["\u0000"]}`))
	f.Add(uint8(1), []byte(`{"project_id":"x-1","name":"X","rate_limit":{"requests":1e9,"period_seconds":-1}}`))
	f.Add(uint8(2), []byte(`{"rate_limit":null}`))
	f.Add(uint8(2), []byte(`{"rate_limit":[1,2]}`))
	f.Add(uint8(3), []byte(`{"overlap_hours":1e308}`))
	f.Add(uint8(3), []byte(`{} {}`))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(string(body)))
		r.RemoteAddr = net.JoinHostPort("192.0.2.1", "40000")
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+w.keys["owner"])
		rec := httptest.NewRecorder()
		w.api.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var env struct {
				Success bool `json:"success"`
				Error   struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Success || env.Error.Code == "" || env.Error.Message == "" {
				t.Fatalf("%s %s %q: %d answered %s, not an error envelope", rt.method, rt.path, body, rec.Code, rec.Body)
			}
		}
		if rec.Code == http.StatusOK || rec.Code == http.StatusCreated {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("success with content type %q", ct)
			}
		}
	})
}
