package api

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/auth/authtest"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events/eventstest"
	"github.com/runagent/runagent/internal/ratelimit"
)

// testKey describes a stored key the narrowing tests make.
type testKey struct {
	project string
	role    core.Role
	scopes  []core.Permission
	agents  []string
	expires *time.Time
	rate    *core.RateLimit
	users   []string
}

// narrowKey stores a key as tk describes and returns its token.
func (w *world) narrowKey(tk testKey) string {
	w.t.Helper()
	ctx := w.t.Context()
	token, id, hash := apikey.New()
	p := &core.Principal{ID: "pr-" + id, ProjectID: tk.project, Name: string(tk.role), Kind: core.PrincipalService, Role: tk.role, CreatedAt: w.now}
	if err := w.store.CreatePrincipal(ctx, p); err != nil {
		w.t.Fatal(err)
	}
	if tk.expires == nil {
		e := w.now.Add(24 * time.Hour)
		tk.expires = &e
	}
	k := &core.APIKey{ID: id, PrincipalID: p.ID, Name: "k", Hash: hash, Scopes: tk.scopes, Agents: tk.agents,
		Users: tk.users, RateLimit: tk.rate, CreatedAt: w.now, ExpiresAt: tk.expires}
	if err := w.store.CreateAPIKey(ctx, k); err != nil {
		w.t.Fatal(err)
	}
	return token
}

func mustKey(t testing.TB, token string) string {
	t.Helper()
	k, err := apikey.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}

// created returns the stored key and role a 201 from key create or
// rotate describes.
func (w *world) created(body []byte) (*core.APIKey, core.Role) {
	w.t.Helper()
	var env struct {
		Data struct {
			Details struct {
				ID   string    `json:"key_id"`
				Role core.Role `json:"role"`
			} `json:"details"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Details.ID == "" {
		w.t.Fatalf("no key in %s", body)
	}
	k, err := w.store.APIKey(w.t.Context(), env.Data.Details.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := w.store.Principal(w.t.Context(), k.PrincipalID)
	if err != nil {
		w.t.Fatal(err)
	}
	return k, p.Role
}

// errField is the field of an error envelope.
func errField(body []byte) string {
	var env struct {
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	json.Unmarshal(body, &env)
	return env.Error.Field
}

// narrowWorld is a world with a rate limiter and narrowed p1 admins.
func narrowWorld(t *testing.T) (*world, *eventstest.Recorder) {
	w := newWorld(t)
	w.limited(ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 100})
	rec := &eventstest.Recorder{}
	w.api.setEvents(rec)
	soon := w.now.Add(time.Hour)
	for name, tk := range map[string]testKey{
		"admin-scoped": {project: "p1", role: core.RoleAdmin, scopes: []core.Permission{core.PermAdmin}},
		"admin-a1":     {project: "p1", role: core.RoleAdmin, agents: []string{agentP1}},
		"admin-short":  {project: "p1", role: core.RoleAdmin, expires: &soon},
		"admin-slow":   {project: "p1", role: core.RoleAdmin, rate: &core.RateLimit{Requests: 5, PeriodSeconds: 60}},
		"owner-scoped": {role: core.RoleOwner, scopes: []core.Permission{core.PermAdmin}},
		"user-a1":      {project: "p1", role: core.RoleUser, agents: []string{agentP1}},
		"victim":       {project: "p1", role: core.RoleAdmin},
		"admin-team":   {project: "p1", role: core.RoleAdmin, users: []string{"team-*", "ops"}},
		"owner-any":    {role: core.RoleOwner, users: []string{core.AnyUser}},
	} {
		w.keys[name] = w.narrowKey(tk)
	}
	return w, rec
}

// TestNarrowedCredentials walks every route that hands out, changes or
// removes a credential or an agent with narrowed credentials: what lies
// within the caller passes (narrowed as the caller is), what does not is
// 403 naming the part, with a privilege_refused event.
func TestNarrowedCredentials(t *testing.T) {
	w, rec := narrowWorld(t)
	pkgOf := func(dir string) string { return packOf(t, dir) }
	p1Pkg, openPkg := pkgOf(w.p1Dir), pkgOf(writeAgentDir(t, openID, "none"))
	newPkg := pkgOf(writeAgentDir(t, "44444444-4444-4444-8444-444444444444", "api_key"))
	victim := "/api/v1/keys/" + mustKey(t, w.keys["victim"])
	viewerKey := "/api/v1/keys/" + mustKey(t, w.keys["viewer"])
	userA1 := "/api/v1/keys/" + mustKey(t, w.keys["user-a1"])
	soon := w.now.Add(time.Hour)

	tests := []struct {
		caller, method, path, body string
		want                       int
		part                       auth.Part // of a 403
		check                      func(t *testing.T, k *core.APIKey, role core.Role)
	}{
		// Key create: omitted parts are inherited, named ones checked.
		{"admin-scoped", "POST", "/api/v1/keys", `{"name":"x","role":"admin"}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !slices.Equal(k.Scopes, []core.Permission{core.PermAdmin}) {
				t.Errorf("scopes %v, want the caller's [admin]", k.Scopes)
			}
		}},
		{"admin-scoped", "POST", "/api/v1/keys", `{"name":"x","role":"admin","scopes":["read","admin"]}`, e403, auth.PartScopes, nil},
		{"admin-scoped", "POST", "/api/v1/keys", `{"name":"x","role":"admin","scopes":[]}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !slices.Equal(k.Scopes, []core.Permission{core.PermAdmin}) {
				t.Errorf("an empty scope list gave %v, want the caller's [admin]", k.Scopes)
			}
		}},
		{"admin-scoped", "POST", "/api/v1/keys", `{"name":"x","role":"viewer"}`, e403, auth.PartScopes, nil},
		{"admin-a1", "POST", "/api/v1/keys", `{"name":"x","role":"user"}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !slices.Equal(k.Agents, []string{agentP1}) {
				t.Errorf("agents %v, want the caller's [%s]", k.Agents, agentP1)
			}
		}},
		{"admin-a1", "POST", "/api/v1/keys", `{"name":"x","agents":["` + openID + `"]}`, e403, auth.PartAgents, nil},
		{"admin-a1", "POST", "/api/v1/keys", `{"name":"x","agents":[]}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !slices.Equal(k.Agents, []string{agentP1}) {
				t.Errorf("an empty agent list gave %v, want the caller's", k.Agents)
			}
		}},
		{"admin", "POST", "/api/v1/keys", `{"name":"x","role":"owner"}`, e403, auth.PartRole, nil},
		{"user-a1", "POST", "/api/v1/keys", `{"name":"x","role":"viewer"}`, e403, "", nil}, // no admin permission at all
		{"admin-short", "POST", "/api/v1/keys", `{"name":"x","expires_in_days":30}`, e403, auth.PartExpiry, nil},
		{"admin-short", "POST", "/api/v1/keys", `{"name":"x"}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if k.ExpiresAt == nil || k.ExpiresAt.After(soon) {
				t.Errorf("expires %v, after the caller's %v", k.ExpiresAt, soon)
			}
		}},
		{"admin-slow", "POST", "/api/v1/keys", `{"name":"x","rate_limit":{"requests":1000000,"period_seconds":1}}`, e403, auth.PartRateLimit, nil},
		{"admin-slow", "POST", "/api/v1/keys", `{"name":"x"}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if k.RateLimit == nil || *k.RateLimit != (core.RateLimit{Requests: 5, PeriodSeconds: 60}) || k.RateLimitByOwner {
				t.Errorf("rate limit %v (by owner %v), want the caller's 5/60 s set by an admin", k.RateLimit, k.RateLimitByOwner)
			}
		}},
		{"admin", "POST", "/api/v1/keys", `{"name":"x","rate_limit":{"requests":101,"period_seconds":60}}`, e403, auth.PartRateLimit, nil},
		{"owner-scoped", "POST", "/api/v1/keys", `{"name":"x","role":"owner"}`, ok201, "", func(t *testing.T, k *core.APIKey, role core.Role) {
			if role != core.RoleOwner || !slices.Equal(k.Scopes, []core.Permission{core.PermAdmin}) {
				t.Errorf("role %s scopes %v, want an owner scoped to [admin]", role, k.Scopes)
			}
		}},
		{"owner", "POST", "/api/v1/keys", `{"name":"x","project_id":"p1","rate_limit":{"requests":1000000,"period_seconds":1}}`, ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !k.RateLimitByOwner {
				t.Error("a rate limit an owner set is not recorded as the owner's")
			}
		}},

		// Rotate: the caller receives the successor.
		{"admin-scoped", "POST", victim + "/rotate", "", e403, auth.PartScopes, nil},
		{"admin-a1", "POST", victim + "/rotate", "", e403, auth.PartAgents, nil},
		{"admin-a1", "POST", userA1 + "/rotate", "", ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if !slices.Equal(k.Agents, []string{agentP1}) {
				t.Errorf("successor agents %v", k.Agents)
			}
		}},
		{"admin-short", "POST", viewerKey + "/rotate", "", ok201, "", func(t *testing.T, k *core.APIKey, _ core.Role) {
			if k.ExpiresAt == nil || k.ExpiresAt.After(soon) {
				t.Errorf("successor expires %v, after the caller's %v", k.ExpiresAt, soon)
			}
		}},
		{"user-a1", "POST", userA1 + "/rotate", "", e403, "", nil},

		// Revoke: authority only.
		{"admin-scoped", "POST", victim + "/revoke", "", e403, auth.PartScopes, nil},
		{"admin-a1", "POST", victim + "/revoke", "", e403, auth.PartAgents, nil},
		{"admin-a1", "POST", userA1 + "/revoke", "", ok200, "", nil},
		{"admin-short", "POST", victim + "/revoke", "", ok200, "", nil},

		// Deploy: a key limited to agents replaces only theirs.
		{"admin-a1", "POST", "/api/v1/agents", p1Pkg, ok200, "", nil},
		{"admin-a1", "POST", "/api/v1/agents", openPkg, e403, auth.PartAgents, nil},
		{"admin-a1", "POST", "/api/v1/agents", newPkg, e403, auth.PartAgents, nil},
		{"admin-scoped", "POST", "/api/v1/agents", p1Pkg, ok200, "", nil},

		// Secrets: only of the caller's agents.
		{"admin-a1", "PUT", "/api/v1/agents/" + agentP1 + "/secrets/TOKEN", `{"value":"v"}`, ok200, "", nil},
		{"admin-a1", "PUT", "/api/v1/agents/" + openID + "/secrets/TOKEN", `{"value":"v"}`, e404, "", nil},
		{"admin-a1", "DELETE", "/api/v1/agents/" + openID + "/secrets/TOKEN", "", e404, "", nil},

		// Principals: an owner scoped to admin disables, enables and
		// deletes only principals whose keys lie within it.
		{"owner-scoped", "POST", "/api/v1/principals/pr-" + mustKey(t, w.keys["owner"]) + "/disable", "", e403, auth.PartScopes, nil},
		{"owner-scoped", "DELETE", "/api/v1/principals/pr-" + mustKey(t, w.keys["viewer"]), "", e403, auth.PartScopes, nil},
		{"owner-scoped", "POST", "/api/v1/principals/pr-" + mustKey(t, w.keys["admin-scoped"]) + "/disable", "", ok200, "", nil},
		{"owner-scoped", "POST", "/api/v1/principals/pr-" + mustKey(t, w.keys["admin-scoped"]) + "/enable", "", ok200, "", nil},

		// Project settings: owners only.
		{"admin-scoped", "PATCH", "/api/v1/projects/p1", `{"rate_limit":null}`, e403, "", nil},
		{"owner-scoped", "PATCH", "/api/v1/projects/p1", `{"rate_limit":null}`, ok200, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.caller+" "+tt.method+" "+tt.path+" "+tt.body[:min(len(tt.body), 60)], func(t *testing.T) {
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
				if !strings.Contains(string(body), "beyond your credential in") {
					t.Errorf("refusal does not say what was too wide: %s", body)
				}
				if len(refused) != 1 || refused[0].Details["part"] != string(tt.part) || !strings.HasPrefix(refused[0].Principal, "key:") {
					t.Errorf("privilege_refused events: %+v", refused)
				}
			} else if len(refused) != 0 {
				t.Errorf("privilege_refused events for an allowed request: %+v", refused)
			}
			if tt.check != nil {
				k, role := w.created(body)
				tt.check(t, k, role)
			}
		})
	}
}

// TestProjectRateLimitIsACeiling: an owner's project rate limit bounds
// what an admin gives a key, and caps keys an admin gave more before it
// was set; a key whose limit an owner set keeps it.
func TestProjectRateLimitIsACeiling(t *testing.T) {
	w, _ := narrowWorld(t)
	status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"fast","rate_limit":{"requests":50,"period_seconds":60}}`)
	if status != ok201 {
		t.Fatalf("admin creates a 50/min key under the default 100/min: %d %s", status, body)
	}
	w.keys["admin-fast"] = keyFrom(t, body)
	status, body = w.do("owner", "POST", "/api/v1/keys", `{"name":"vip","project_id":"p1","rate_limit":{"requests":50,"period_seconds":60}}`)
	if status != ok201 {
		t.Fatalf("owner creates a 50/min key: %d %s", status, body)
	}
	w.keys["owner-fast"] = keyFrom(t, body)
	if status, body := w.do("owner", "PATCH", "/api/v1/projects/p1", `{"rate_limit":{"requests":5,"period_seconds":60}}`); status != ok200 {
		t.Fatalf("owner sets p1 to 5/min: %d %s", status, body)
	}
	if status, body := w.do("admin", "POST", "/api/v1/keys", `{"name":"x","rate_limit":{"requests":1000000,"period_seconds":1}}`); status != e403 || errField(body) != "rate_limit" {
		t.Errorf("admin gives a key 1,000,000/s above the project's 5/min: %d %s", status, body)
	}
	for cred, want := range map[string]string{"admin-fast": "5", "owner-fast": "50", "viewer": "5"} {
		if _, h := w.doH(cred, "GET", "/api/v1/agents"); h.Get("RateLimit-Limit") != want {
			t.Errorf("%s: RateLimit-Limit %q, want %s", cred, h.Get("RateLimit-Limit"), want)
		}
	}
}

// TestKeyCreateProperty draws random callers and random key requests:
// every key the API creates lies within its creator (by authtest's model,
// written apart from auth.Within), and every refusal creates nothing.
func TestKeyCreateProperty(t *testing.T) {
	w, _ := narrowWorld(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(1, seed))
	callers := []string{"admin", "admin-scoped", "admin-a1", "admin-short", "admin-slow", "owner", "owner-scoped", "p2admin", "admin-team", "owner-any"}
	roles := []string{"", "viewer", "user", "streamer", "admin", "owner"}
	agents := []string{agentP1, openID, agentP2}
	var made, refused int
	// Draw until both outcomes have been seen often enough (most random
	// requests from narrowed callers are refused).
	for i := 0; (made < 50 || refused < 50) && i < 5000; i++ {
		caller := callers[rng.IntN(len(callers))]
		req := map[string]any{"name": fmt.Sprint("k", i)}
		if r := roles[rng.IntN(len(roles))]; r != "" {
			req["role"] = r
		}
		if rng.IntN(2) == 0 {
			var s []string
			for _, p := range core.AllPermissions {
				if rng.IntN(2) == 0 {
					s = append(s, string(p))
				}
			}
			req["scopes"] = s
		}
		if rng.IntN(2) == 0 {
			var s []string
			for _, a := range agents {
				if rng.IntN(3) == 0 {
					s = append(s, a)
				}
			}
			req["agents"] = s
		}
		if rng.IntN(2) == 0 {
			var s []string
			for _, u := range []string{"*", "team-*", "team-a", "team-b*", "ops", "other"} {
				if rng.IntN(3) == 0 {
					s = append(s, u)
				}
			}
			req["users"] = s
		}
		if rng.IntN(3) == 0 {
			req["expires_in_days"] = rng.IntN(400)
		}
		if rng.IntN(3) == 0 {
			req["rate_limit"] = map[string]int{"requests": 1 + rng.IntN(200), "period_seconds": []int{1, 60, 3600}[rng.IntN(3)]}
		}
		if rng.IntN(4) == 0 {
			req["project_id"] = []string{"p1", "p2"}[rng.IntN(2)]
		}
		if rng.IntN(3) == 0 {
			// Rotate a random key instead: the caller receives the
			// successor.
			w.rotateWithin(caller, rng)
			continue
		}
		b, _ := json.Marshal(req)
		before := w.keyCount()
		status, body := w.do(caller, "POST", "/api/v1/keys", string(b))
		if status != ok201 {
			refused++
			if status >= 500 {
				t.Fatalf("%s %s: %d %s", caller, b, status, body)
			}
			if n := w.keyCount(); n != before {
				t.Fatalf("%s %s refused with %d but the key count went %d -> %d", caller, b, status, before, n)
			}
			continue
		}
		made++
		k, role := w.created(body)
		holder, err := w.api.keys.rates.holderGrant(t.Context(), w.identityOf(caller))
		if err != nil {
			t.Fatal(err)
		}
		target, err := w.api.keys.rates.keyGrant(t.Context(), k, role)
		if err != nil {
			t.Fatal(err)
		}
		if !authtest.Within(target, holder, []string{"p1", "p2", core.DefaultProject}, agents) {
			t.Fatalf("%s %s made key %+v (role %s), not within the caller", caller, b, k, role)
		}
	}
	if made < 50 || refused < 50 {
		t.Errorf("the draw made %d keys and refused %d: too few of one to test the property", made, refused)
	}
}

// rotateWithin has caller rotate a random key and checks that a
// successor it gets lies within it.
func (w *world) rotateWithin(caller string, rng *rand.Rand) {
	t := w.t
	ks, err := w.store.APIKeys(t.Context(), core.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	k := ks[rng.IntN(len(ks))]
	status, body := w.do(caller, "POST", "/api/v1/keys/"+k.ID+"/rotate", "")
	if status >= 500 {
		t.Fatalf("%s rotates %s: %d %s", caller, k.ID, status, body)
	}
	if status != ok201 {
		return
	}
	next, role := w.created(body)
	holder, err := w.api.keys.rates.holderGrant(t.Context(), w.identityOf(caller))
	if err != nil {
		t.Fatal(err)
	}
	target, err := w.api.keys.rates.keyGrant(t.Context(), next, role)
	if err != nil {
		t.Fatal(err)
	}
	if !authtest.Within(target, holder, []string{"p1", "p2", core.DefaultProject}, []string{agentP1, openID, agentP2}) {
		t.Fatalf("%s rotated %s into %+v (role %s), not within the caller", caller, k.ID, next, role)
	}
}

func (w *world) keyCount() int {
	w.t.Helper()
	ks, err := w.store.APIKeys(w.t.Context(), core.KeyFilter{})
	if err != nil {
		w.t.Fatal(err)
	}
	return len(ks)
}

// identityOf authenticates a world credential as the API would.
func (w *world) identityOf(cred string) auth.Identity {
	w.t.Helper()
	id, err := w.api.gw.auth.Authenticate(w.t.Context(), w.keys[cred], "192.0.2.1")
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// packOf packages an agent directory for a deploy request's body.
func packOf(t *testing.T, dir string) string {
	t.Helper()
	pkg, _, err := bundle.Pack(dir, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return string(pkg)
}

// TestRefusedDeploysLeaveNothing: deploys refused for every reason leave
// no file in the code directory.
func TestRefusedDeploysLeaveNothing(t *testing.T) {
	w, _ := narrowWorld(t)
	files := func() []string {
		var out []string
		filepath.WalkDir(w.codeDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	pkgOf := func(dir string) string { return packOf(t, dir) }
	before := files()
	for i := range 20 {
		// A changed version of p1's agent, refused in p2 (another
		// project's agent id: 409); a new agent from a key limited to
		// one; a package that is not one.
		dir := writeAgentDir(t, agentP1, "api_key")
		if err := os.WriteFile(filepath.Join(dir, "extra.py"), []byte(fmt.Sprint("x = ", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			cred, pkg string
			want      int
		}{
			{"p2admin", pkgOf(dir), http.StatusConflict},
			{"admin-a1", pkgOf(writeAgentDir(t, fmt.Sprintf("55555555-5555-4555-8555-%012d", i), "api_key")), e403},
			{"admin", "not a package", http.StatusBadRequest},
		} {
			if status, body := w.do(c.cred, "POST", "/api/v1/agents", c.pkg); status != c.want {
				t.Fatalf("deploy %d by %s: %d %s, want %d", i, c.cred, status, body, c.want)
			}
		}
	}
	if after := files(); !slices.Equal(before, after) {
		t.Errorf("refused deploys left files: before %v, after %v", before, after)
	}
}
