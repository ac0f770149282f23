package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events/eventstest"
)

// testIssuer is a real OIDC issuer on loopback: discovery, a JWKS with
// one ES256 key, and tokens signed with it.
type testIssuer struct {
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		pub := key.PublicKey
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
			"x": b64(pub.X.FillBytes(make([]byte, 32))), "y": b64(pub.Y.FillBytes(make([]byte, 32))),
		}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// token is an access token of subject sub with role in project p1.
func (is *testIssuer) token(t *testing.T, sub string, role core.Role) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": is.srv.URL, "sub": sub, "aud": "runagent", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "runagent_project": "p1", "runagent_role": string(role),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// userWorld is a narrowWorld whose authenticator also takes access
// tokens of a real issuer, with keys that act for end users, and a route
// that opens a user's state as a run asking for persistent memory will
// (the gateway's whole chain, then authorizeUser).
func userWorld(t *testing.T) (*world, *eventstest.Recorder, *testIssuer, http.Handler) {
	w, rec := narrowWorld(t)
	is := newTestIssuer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := oidc.New(ctx, oidc.Config{Issuers: []oidc.IssuerConfig{{Issuer: is.srv.URL, Audiences: []string{"runagent"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	w.api.gw.auth = auth.New(auth.Config{Store: w.store, Tokens: auth.OIDC(v), Now: func() time.Time { return w.clock }})
	for name, users := range map[string][]string{
		"user-alice": {"alice", "bob"},
		"user-team":  {"team-*"},
		"user-any":   {"*"},
	} {
		w.keys[name] = w.narrowKey(testKey{project: "p1", role: core.RoleUser, users: users})
	}
	w.keys["oidc-alice"] = is.token(t, "alice", core.RoleUser)
	w.keys["oidc-admin-alice"] = is.token(t, "alice", core.RoleAdmin)

	rt := route{"POST", "/test/agents/{agent_id}/memory", invokeRule, true, notAudited("test route"),
		func(rw http.ResponseWriter, r *http.Request) error {
			if err := w.api.runs.authorizeUser(r, r.URL.Query().Get("user_id")); err != nil {
				return err
			}
			w.api.runs.writeData(rw, r, http.StatusOK, map[string]any{"opened": true})
			return nil
		}}
	mux := http.NewServeMux()
	mux.Handle(rt.pattern(), w.api.gw.chain(rt))
	return w, rec, is, mux
}

// TestAuthorizeUser: through the gateway, a run that opens a user's state
// passes only for a credential entitled to that user; any other is 403
// FORBIDDEN on user_id, saying what grants it, with a user_denied event.
func TestAuthorizeUser(t *testing.T) {
	w, rec, _, mux := userWorld(t)
	for _, tt := range []struct {
		cred, agent, user string
		want              int
		says              string // in a refusal's message
	}{
		{"user-alice", agentP1, "alice", ok200, ""},
		{"user-alice", agentP1, "bob", ok200, ""},
		{"user-alice", agentP1, "carol", e403, "runagent keys create --users"},
		{"user-alice", agentP1, "alice2", e403, "users list"},
		{"user-team", agentP1, "team-7", ok200, ""},
		{"user-team", agentP1, "teams", e403, "users list"},
		{"user-team", agentP1, "", http.StatusBadRequest, "needs a user_id"},
		{"user-any", agentP1, "anyone@example.com", ok200, ""},
		{"user", agentP1, "alice", e403, "users list"},  // a key without users
		{"owner", agentP1, "alice", e403, "users list"}, // owners too
		{"oidc-alice", agentP1, "alice", ok200, ""},
		{"oidc-alice", agentP1, "bob", e403, "its own subject"},
		{"none", openID, "alice", e403, "without a credential"},
	} {
		t.Run(tt.cred+" "+tt.user, func(t *testing.T) {
			rec.Reset()
			r := httptest.NewRequest("POST", "/test/agents/"+tt.agent+"/memory?user_id="+url.QueryEscape(tt.user), nil)
			r.RemoteAddr = "192.0.2.1:40000"
			if tok := w.keys[tt.cred]; tok != "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			resp := httptest.NewRecorder()
			mux.ServeHTTP(resp, r)
			if resp.Code != tt.want {
				t.Fatalf("got %d %s, want %d", resp.Code, resp.Body, tt.want)
			}
			denied := rec.OfType(core.EventUserDenied)
			if tt.want == ok200 {
				if len(denied) != 0 {
					t.Errorf("user_denied events for an allowed request: %+v", denied)
				}
				return
			}
			var env struct {
				Error struct{ Code, Field, Message string } `json:"error"`
			}
			if err := json.Unmarshal(resp.Body.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			if tt.user == "" {
				if env.Error.Code != core.CodeValidation || env.Error.Field != "user_id" || !strings.Contains(env.Error.Message, tt.says) || len(denied) != 0 {
					t.Errorf("no user_id: %+v, events %+v; want VALIDATION_ERROR on user_id and no event", env.Error, denied)
				}
				return
			}
			if env.Error.Code != core.CodeForbidden || env.Error.Field != "user_id" || !strings.Contains(env.Error.Message, tt.says) {
				t.Errorf("refusal %+v, want FORBIDDEN on user_id saying %q", env.Error, tt.says)
			}
			if strings.Contains(env.Error.Message, tt.user) {
				t.Errorf("refusal repeats the user id: %s", env.Error.Message)
			}
			if len(denied) != 1 {
				t.Fatalf("user_denied events: %+v, want one", denied)
			}
			ev := denied[0]
			if ev.Details["user_id"] != tt.user || ev.AgentID != tt.agent || ev.Severity != "" && ev.Severity != core.SeverityWarning {
				t.Errorf("event %+v, want user_id %q and agent %s", ev, tt.user, tt.agent)
			}
			switch {
			case strings.HasPrefix(tt.cred, "oidc"):
				if !strings.HasPrefix(ev.Principal, "oidc:") {
					t.Errorf("event principal %q, want the token's subject", ev.Principal)
				}
			case tt.cred != "none":
				if ev.Principal != "key:"+mustKey(t, w.keys[tt.cred]) {
					t.Errorf("event principal %q, want the key", ev.Principal)
				}
			}
		})
	}
	if err := (&runHandlers{base: w.api.runs.base}).authorizeUser(
		httptest.NewRequest("POST", "/", nil).WithContext(auth.WithIdentity(t.Context(), unrestricted)), "anyone"); err != nil {
		t.Errorf("a server without authentication refused a user: %v", err)
	}
}

// TestKeyUsersNarrow: a key is created, rotated and revoked only by a
// credential whose users cover the key's (exact by exact, a prefix by a
// prefix of it, * by *); users left out are none, not the caller's;
// malformed entries are 400 naming them; keys list their users.
func TestKeyUsersNarrow(t *testing.T) {
	w, rec, _, _ := userWorld(t)
	// narrowWorld has admin-team (team-*, ops) and owner-any (*).
	w.keys["admin-any"] = w.narrowKey(testKey{project: "p1", role: core.RoleAdmin, users: []string{"*"}})
	wantUsers := func(want ...string) func(t *testing.T, k *core.APIKey) {
		return func(t *testing.T, k *core.APIKey) {
			if !slices.Equal(k.Users, want) {
				t.Errorf("users %q, want %q", k.Users, want)
			}
		}
	}
	teamKey := "/api/v1/keys/" + mustKey(t, w.keys["user-team"])
	for _, tt := range []struct {
		caller, method, path, body string
		want                       int
		part                       auth.Part
		check                      func(t *testing.T, k *core.APIKey)
	}{
		{"admin", "POST", "/api/v1/keys", `{"name":"x"}`, ok201, "", wantUsers()},
		{"admin", "POST", "/api/v1/keys", `{"name":"x","users":[]}`, ok201, "", wantUsers()},
		{"admin", "POST", "/api/v1/keys", `{"name":"x","users":["alice"]}`, e403, auth.PartUsers, nil},
		{"owner", "POST", "/api/v1/keys", `{"name":"x","project_id":"p1","users":["*"]}`, e403, auth.PartUsers, nil},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x"}`, ok201, "", wantUsers()},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x","users":["team-a","team-b*","team-*","ops"]}`, ok201, "", wantUsers("team-a", "team-b*", "team-*", "ops")},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x","users":["*"]}`, e403, auth.PartUsers, nil},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x","users":["team*"]}`, e403, auth.PartUsers, nil},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x","users":["ops*"]}`, e403, auth.PartUsers, nil},
		{"admin-team", "POST", "/api/v1/keys", `{"name":"x","users":["team-a","other"]}`, e403, auth.PartUsers, nil},
		{"admin-any", "POST", "/api/v1/keys", `{"name":"x","users":["*"]}`, ok201, "", wantUsers("*")},
		{"owner-any", "POST", "/api/v1/keys", `{"name":"x","project_id":"p2","users":["*"]}`, ok201, "", wantUsers("*")},
		{"owner-any", "POST", "/api/v1/keys", `{"name":"x","users":["a*b"]}`, http.StatusBadRequest, "", nil},
		{"owner-any", "POST", "/api/v1/keys", `{"name":"x","users":[""]}`, http.StatusBadRequest, "", nil},
		{"owner-any", "POST", "/api/v1/keys", `{"name":"x","users":"*"}`, http.StatusBadRequest, "", nil},
		{"oidc-admin-alice", "POST", "/api/v1/keys", `{"name":"x","users":["alice"]}`, ok201, "", wantUsers("alice")},
		{"oidc-admin-alice", "POST", "/api/v1/keys", `{"name":"x","users":["alice*"]}`, e403, auth.PartUsers, nil},
		{"oidc-admin-alice", "POST", "/api/v1/keys", `{"name":"x","users":["bob"]}`, e403, auth.PartUsers, nil},

		// Rotation keeps the users and needs them covered; so does
		// revoking.
		{"admin", "POST", teamKey + "/rotate", "", e403, auth.PartUsers, nil},
		{"admin", "POST", teamKey + "/revoke", "", e403, auth.PartUsers, nil},
		{"admin-team", "POST", teamKey + "/rotate", "", ok201, "", wantUsers("team-*")},
	} {
		t.Run(tt.caller+" "+tt.path+" "+tt.body, func(t *testing.T) {
			rec.Reset()
			status, body := w.do(tt.caller, tt.method, tt.path, tt.body)
			if status != tt.want {
				t.Fatalf("got %d %s, want %d", status, body, tt.want)
			}
			refused := rec.OfType(core.EventPrivilegeRefused)
			if tt.part != "" {
				if got := errField(body); got != string(tt.part) {
					t.Errorf("refusal names %q (%s), want %q", got, body, tt.part)
				}
				if len(refused) != 1 || refused[0].Details["part"] != string(tt.part) {
					t.Errorf("privilege_refused events: %+v", refused)
				}
			} else if len(refused) != 0 {
				t.Errorf("privilege_refused events: %+v", refused)
			}
			if tt.want == http.StatusBadRequest && strings.Contains(tt.body, "[") && errField(body) != "users" {
				t.Errorf("a bad users list is refused on %q: %s", errField(body), body)
			}
			if tt.check != nil {
				k, _ := w.created(body)
				tt.check(t, k)
			}
		})
	}

	// Listing shows each key's users.
	status, body := w.do("owner-any", "GET", "/api/v1/keys?project_id=p1", "")
	if status != ok200 {
		t.Fatalf("list keys: %d %s", status, body)
	}
	var env struct {
		Data struct {
			Keys []struct {
				ID    string   `json:"key_id"`
				Users []string `json:"users"`
			} `json:"keys"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{}
	for _, k := range env.Data.Keys {
		listed[k.ID] = k.Users
	}
	if got := listed[mustKey(t, w.keys["user-alice"])]; !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("listed users of user-alice: %q", got)
	}
}
