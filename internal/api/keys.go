package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// API keys: created (with a principal), listed, revoked and rotated, by
// admins of a project and owners; and the strict decoding of every
// control request.

const (
	maxKeyDays     = 3650
	defaultOverlap = 24 * time.Hour
	maxOverlap     = 30 * 24 * time.Hour
	maxControlBody = 64 << 10
)

var projectIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// decodeStrict decodes a control API body, rejecting unknown fields and
// trailing data.
func (b *base) decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := b.readBody(w, r, maxControlBody)
	if err != nil {
		return err
	}
	if err := strictJSON(body, v); err != nil {
		return &core.Error{Code: core.CodeValidation, Message: "invalid request body: " + err.Error(), Err: err}
	}
	return nil
}

// strictJSON decodes one JSON value from b into v, rejecting unknown
// fields and trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// targetProject is the project a control request acts in: the caller's,
// or for an owner the one named (default: core.DefaultProject).
func targetProject(id auth.Identity, named string) (string, error) {
	if !id.Owner() {
		if named != "" && named != id.ProjectID {
			return "", core.Errorf(core.CodeNotFound, "project not found")
		}
		return id.ProjectID, nil
	}
	if named == "" {
		return core.DefaultProject, nil
	}
	return named, nil
}

type keyView struct {
	*core.APIKey
	Role core.Role `json:"role,omitempty"`
}

type createKeyRequest struct {
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Role          core.Role         `json:"role"`
	Scopes        []core.Permission `json:"scopes"`
	Agents        []string          `json:"agents"`
	Users         []string          `json:"users"`
	ExpiresInDays int               `json:"expires_in_days"`
	ProjectID     string            `json:"project_id"`
	RateLimit     *core.RateLimit   `json:"rate_limit"`
}

// createKey creates a principal (a service, or a user) with the requested
// role and an API key for it, and shows the key once. The key lies within
// the caller's own (see narrow.go): what the request leaves out — scopes,
// agents, expiry, rate limit — is the caller's where the caller is
// narrowed; what it names must not exceed the caller's. Users left out
// are none: the key acts for no end user.
func (h *keyHandlers) createKey(w http.ResponseWriter, r *http.Request) error {
	id := identity(r)
	var req createKeyRequest
	if err := h.decodeStrict(w, r, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 100 || !printable(req.Name) {
		return fieldError("name", "name must be 1 to 100 printable characters")
	}
	if req.Role == "" {
		req.Role = core.RoleUser
	}
	switch req.Kind {
	case "":
		req.Kind = core.PrincipalService
	case core.PrincipalService, core.PrincipalUser:
	default:
		return fieldError("kind", "kind must be service (a program) or user (a person)")
	}
	if !req.Role.Valid() {
		return fieldError("role", "role must be one of viewer, user, streamer, admin, owner")
	}
	// An empty list reads as the field left out, as stored keys read it.
	if len(req.Scopes) == 0 {
		req.Scopes = nil
	}
	if len(req.Agents) == 0 {
		req.Agents = nil
	}
	for _, p := range req.Scopes {
		if !p.Valid() || !req.Role.Has(p) {
			return fieldError("scopes", fmt.Sprintf("scope %q is not a permission of role %s", p, req.Role))
		}
	}
	if len(req.Users) == 0 {
		req.Users = nil
	}
	if err := core.CheckUsers(req.Users); err != nil {
		return err
	}
	if req.RateLimit != nil && !req.RateLimit.Valid() {
		return fieldError("rate_limit", rateLimitRule)
	}
	if req.ExpiresInDays < 0 || req.ExpiresInDays > maxKeyDays {
		return fieldError("expires_in_days", fmt.Sprintf("expires_in_days must be from 1 to %d (0 = the default, %d)", maxKeyDays, int(h.keyTTL/(24*time.Hour))))
	}
	project, err := targetProject(id, req.ProjectID)
	if err != nil {
		return err
	}
	if req.Role == core.RoleOwner {
		project = ""
	} else if _, err := h.store.Project(r.Context(), project); err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return core.Errorf(core.CodeNotFound, "project not found")
		}
		return err
	}
	holder, err := h.rates.holderGrant(r.Context(), id)
	if err != nil {
		return err
	}
	now := h.now().UTC()
	target := auth.Grant{Role: req.Role, Project: project, Scopes: req.Scopes, Agents: req.Agents, Users: req.Users, RateLimit: req.RateLimit}
	if req.Scopes == nil {
		target.Scopes = auth.InheritScopes(req.Role, holder)
	}
	if req.Agents == nil {
		target.Agents = holder.Agents
	}
	expires := now.Add(h.keyTTL)
	if req.ExpiresInDays > 0 {
		expires = now.Add(time.Duration(req.ExpiresInDays) * 24 * time.Hour)
	} else if holder.Expires != nil && expires.After(*holder.Expires) {
		expires = *holder.Expires
	}
	target.Expires = &expires
	if req.RateLimit == nil && holder.RateLimit != nil {
		// The key would get its project's (or the server's) limit; a
		// caller limited below that passes on its own.
		dflt, err := h.rates.grantRate(r.Context(), project, nil, false)
		if err != nil {
			return err
		}
		target.RateLimit = dflt
		if dflt == nil || !dflt.Within(*holder.RateLimit) {
			target.RateLimit = holder.RateLimit
			req.RateLimit = holder.RateLimit
		}
	}
	if err := auth.Within(target, holder); err != nil {
		return h.refuseWider(r, "create this key", err)
	}
	for _, agentID := range target.Agents {
		d, err := h.agents.agentFor(r, agentID)
		if err != nil || d.ProjectID != project {
			return fieldError("agents", fmt.Sprintf("agent %s not found in the key's project", quoteID(agentID)))
		}
	}
	p := &core.Principal{ID: uuid.NewString(), ProjectID: project, Name: req.Name, Kind: req.Kind, Role: req.Role, CreatedAt: now}
	if err := h.store.CreatePrincipal(r.Context(), p); err != nil {
		return err
	}
	token, k, err := h.newKey(r, p, req.Name, keySpec{scopes: target.Scopes, agents: target.Agents, users: target.Users, rate: req.RateLimit,
		rateByOwner: req.RateLimit != nil && id.Owner(), expires: expires})
	if err != nil {
		return err
	}
	noteAudit(r, "key_id", k.ID)
	noteAudit(r, "role", string(p.Role))
	return h.showKey(w, r, http.StatusCreated, token, k, p.Role)
}

// keySpec is what a new key holds besides its principal.
type keySpec struct {
	scopes      []core.Permission
	agents      []string
	users       []string
	rate        *core.RateLimit
	rateByOwner bool
	expires     time.Time
}

// newKey creates and stores a key for p.
func (h *keyHandlers) newKey(r *http.Request, p *core.Principal, name string, s keySpec) (string, *core.APIKey, error) {
	token, keyID, hash := apikey.New()
	k := &core.APIKey{
		ID: keyID, PrincipalID: p.ID, ProjectID: p.ProjectID, Name: name, Hash: hash,
		Scopes: s.scopes, Agents: s.agents, Users: s.users, RateLimit: s.rate, RateLimitByOwner: s.rateByOwner,
		CreatedAt: h.now().UTC(), ExpiresAt: &s.expires,
	}
	if err := h.store.CreateAPIKey(r.Context(), k); err != nil {
		return "", nil, err
	}
	h.emit(r, core.SecurityEvent{Type: core.EventKeyCreated, Message: "api key created",
		Details: map[string]string{"key_id": k.ID, "principal_id": p.ID, "project_id": p.ProjectID, "role": string(p.Role)}})
	return token, k, nil
}

// showKey answers with a new key: the only time its secret is shown.
func (h *keyHandlers) showKey(w http.ResponseWriter, r *http.Request, status int, token string, k *core.APIKey, role core.Role) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	h.writeData(w, r, status, map[string]any{
		"key":     token,
		"details": keyView{k, role},
		"note":    "store this key now: it is shown only once and cannot be recovered",
	})
	return nil
}

// listKeys lists the keys of the caller's project (an owner's: every
// project's, or ?project_id='s), newest first, one page of them
// (cursorParams).
func (h *keyHandlers) listKeys(w http.ResponseWriter, r *http.Request) error {
	id := identity(r)
	q := r.URL.Query()
	limit, c, err := cursorParams(q)
	if err != nil {
		return err
	}
	f := core.KeyFilter{Limit: limit + 1}
	if !id.Owner() {
		f.ProjectID = id.ProjectID
	} else if p := q.Get("project_id"); p != "" {
		f.ProjectID = p
	}
	if c != "" {
		if f.After, err = decodeKeyCursor(c); err != nil {
			return err
		}
	}
	keys, err := h.store.APIKeys(r.Context(), f)
	if err != nil {
		return err
	}
	body := map[string]any{}
	keys = pageOf(body, keys, limit, encodeKeyCursor)
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyView{APIKey: k})
	}
	body["keys"] = out
	h.writeData(w, r, http.StatusOK, body)
	return nil
}

// keyFor returns the key keyID if the request may manage it; otherwise
// the same NOT_FOUND as for an unknown key.
func (h *keyHandlers) keyFor(r *http.Request, keyID string) (*core.APIKey, error) {
	notFound := core.Errorf(core.CodeNotFound, "api key %s not found", quoteID(keyID))
	if !validID(keyID) {
		return nil, notFound
	}
	k, err := h.store.APIKey(r.Context(), keyID)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return nil, notFound
		}
		return nil, err
	}
	id := identity(r)
	if !id.Owner() && (k.ProjectID == "" || k.ProjectID != id.ProjectID) {
		return nil, notFound
	}
	return k, nil
}

// revokeKey revokes a key whose authority lies within the caller's
// (role, scopes, project and agents: revoking removes power, so the
// key's expiry and rate limit do not matter).
func (h *keyHandlers) revokeKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.keyFor(r, r.PathValue("key_id"))
	if err != nil {
		return err
	}
	p, err := h.store.Principal(r.Context(), k.PrincipalID)
	if err != nil {
		return err
	}
	target := auth.Grant{Role: p.Role, Project: k.ProjectID, Scopes: k.Scopes, Agents: k.Agents, Users: k.Users}
	if err := auth.Within(target, authority(identity(r))); err != nil {
		return h.refuseWider(r, "revoke this key", err)
	}
	if err := h.store.RevokeAPIKey(r.Context(), k.ID, h.now().UTC()); err != nil {
		return err
	}
	h.forgetKey(k.ID)
	h.emit(r, core.SecurityEvent{Type: core.EventKeyRevoked, Message: "api key revoked", Details: map[string]string{"key_id": k.ID}})
	h.writeData(w, r, http.StatusOK, map[string]any{"key_id": k.ID, "revoked": true})
	return nil
}

type rotateRequest struct {
	OverlapHours *float64 `json:"overlap_hours"`
}

// rotateKey issues a successor of a key with the same principal, scopes,
// agents, users and rate limit; the old key keeps working for the overlap. The
// caller receives the successor, so the key must lie within the caller's
// own, and the successor expires no later than the caller does.
func (h *keyHandlers) rotateKey(w http.ResponseWriter, r *http.Request) error {
	k, err := h.keyFor(r, r.PathValue("key_id"))
	if err != nil {
		return err
	}
	var req rotateRequest
	if r.ContentLength != 0 {
		if err := h.decodeStrict(w, r, &req); err != nil {
			return err
		}
	}
	overlap := defaultOverlap
	if req.OverlapHours != nil {
		overlap = time.Duration(*req.OverlapHours * float64(time.Hour))
		if overlap < 0 || overlap > maxOverlap {
			return fieldError("overlap_hours", fmt.Sprintf("overlap_hours must be from 0 to %d", int(maxOverlap.Hours())))
		}
	}
	now := h.now().UTC()
	if ok, _ := k.Usable(now); !ok {
		return core.Errorf(core.CodeConflict, "api key %s is revoked or expired; create a new one instead", k.ID)
	}
	p, err := h.store.Principal(r.Context(), k.PrincipalID)
	if err != nil {
		return err
	}
	holder, err := h.rates.holderGrant(r.Context(), identity(r))
	if err != nil {
		return err
	}
	expires := now.Add(h.keyTTL)
	if holder.Expires != nil && expires.After(*holder.Expires) {
		expires = *holder.Expires
	}
	target, err := h.rates.keyGrant(r.Context(), k, p.Role)
	if err != nil {
		return err
	}
	target.Expires = &expires
	if err := auth.Within(target, holder); err != nil {
		return h.refuseWider(r, "rotate this key", err)
	}
	token, keyID, hash := apikey.New()
	next := &core.APIKey{
		ID: keyID, PrincipalID: k.PrincipalID, ProjectID: k.ProjectID, Name: k.Name, Hash: hash,
		Scopes: k.Scopes, Agents: k.Agents, Users: k.Users, RateLimit: k.RateLimit, RateLimitByOwner: k.RateLimitByOwner,
		CreatedAt: now, ExpiresAt: &expires,
	}
	if err := h.store.RotateAPIKey(r.Context(), k.ID, now.Add(overlap), next); err != nil {
		return err
	}
	h.forgetKey(k.ID)
	h.emit(r, core.SecurityEvent{Type: core.EventKeyRotated, Message: "api key rotated",
		Details: map[string]string{"key_id": k.ID, "new_key_id": next.ID, "overlap": overlap.String()}})
	noteAudit(r, "new_key_id", next.ID)
	return h.showKey(w, r, http.StatusCreated, token, next, p.Role)
}

type createProjectRequest struct {
	ProjectID string          `json:"project_id"`
	Name      string          `json:"name"`
	RateLimit *core.RateLimit `json:"rate_limit"`
}

const rateLimitRule = "rate_limit must be {\"requests\": 1..1000000, \"period_seconds\": 1..86400}"

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, isControl)
}

// forgetKey makes this node see a changed key at once.
func (h *keyHandlers) forgetKey(id string) {
	if h.auth != nil {
		h.auth.Forget(id)
	}
}
