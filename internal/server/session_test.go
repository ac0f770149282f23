package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSessionLifetimesReachConsole: --session-idle and --session-max are
// the lifetimes of the console's sessions: sign-in says so, and a session
// left alone past the idle time ends (its cookie is refused) while one in
// use lives on.
func TestSessionLifetimesReachConsole(t *testing.T) {
	key := withOwnerKey(t)
	s := serve(t, Config{SessionIdle: 2 * time.Second, SessionMax: time.Hour})
	signIn := func() *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest("POST", s.URL()+"/api/v1/session", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Data struct {
				Session struct {
					ExpiresAt   time.Time `json:"expires_at"`
					IdleSeconds int       `json:"idle_timeout_seconds"`
				} `json:"session"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != http.StatusCreated || len(resp.Cookies()) == 0 {
			t.Fatalf("POST /api/v1/session = %d, %v, cookies %d", resp.StatusCode, err, len(resp.Cookies()))
		}
		if got := env.Data.Session.IdleSeconds; got != 2 {
			t.Errorf("idle_timeout_seconds = %d, want 2 (--session-idle)", got)
		}
		if left := time.Until(env.Data.Session.ExpiresAt); left < 59*time.Minute || left > time.Hour {
			t.Errorf("session ends in %s, want 1h (--session-max)", left)
		}
		return resp.Cookies()[0]
	}
	whoami := func(c *http.Cookie) int {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL()+"/api/v1/whoami", nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	idle, used := signIn(), signIn()
	for range 3 { // 3 s in all: past the idle time of the unused one
		time.Sleep(time.Second)
		if got := whoami(used); got != http.StatusOK {
			t.Fatalf("session in use: whoami = %d, want 200", got)
		}
	}
	if got := whoami(idle); got != http.StatusUnauthorized {
		t.Errorf("session idle for 3 s (--session-idle 2s): whoami = %d, want 401", got)
	}
}

// TestOpenRefusesSessionLifetimes: Open refuses lifetimes the flags'
// check refuses, naming the flag.
func TestOpenRefusesSessionLifetimes(t *testing.T) {
	for _, c := range []Config{
		{SessionIdle: -time.Second},
		{SessionIdle: time.Hour, SessionMax: time.Minute},
		{SessionMax: 31 * 24 * time.Hour},
	} {
		c.DataDir, c.Addr = t.TempDir(), "127.0.0.1:0"
		if s, err := Open(t.Context(), c); err == nil {
			s.Close()
			t.Errorf("Open(idle %s, max %s) succeeded, want it refused", c.SessionIdle, c.SessionMax)
		} else if !strings.Contains(err.Error(), "--session-") {
			t.Errorf("Open(idle %s, max %s) = %v, want the flag named", c.SessionIdle, c.SessionMax, err)
		}
	}
}
