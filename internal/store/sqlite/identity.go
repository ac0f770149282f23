package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

var _ core.IdentityStore = (*DB)(nil)

// checkProject returns a core.CodeValidation error unless project id
// exists and is not deleted. A reference to a missing project is a bad
// request, not a missing target: the caller asked to create something
// else.
func checkProject(ctx context.Context, tx *sql.Tx, id string) error {
	var deleted sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT deleted_at FROM projects WHERE id = ?`, id).Scan(&deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("project %q does not exist", id), Field: "project_id"}
	}
	if err != nil {
		return fmt.Errorf("check project %q: %w", id, err)
	}
	if deleted.Valid {
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("project %q was deleted", id), Field: "project_id"}
	}
	return nil
}

// CreateProject inserts p. p.ID must be set and unused (a duplicate,
// core.DefaultProject and deleted projects' ids included, is a
// core.CodeConflict error); a zero p.CreatedAt is set to the current time.
func (db *DB) CreateProject(ctx context.Context, p *core.Project) error {
	if p.ID == "" {
		return &core.Error{Code: core.CodeValidation, Message: "project id is required", Field: "project_id"}
	}
	requests, period, err := rateColumns(p.RateLimit)
	if err != nil {
		return err
	}
	created := p.CreatedAt
	if created.IsZero() {
		created = db.now().UTC()
	}
	createdNS, err := encodeTime(created)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO projects (id, name, created_at, rate_requests, rate_period_s) VALUES (?, ?, ?, ?, ?)`,
		p.ID, p.Name, createdNS, requests, period)
	if db.isConstraint(err) {
		msg := "project already exists"
		var deleted sql.NullInt64
		if db.write.QueryRowContext(ctx, `SELECT deleted_at FROM projects WHERE id = ?`, p.ID).Scan(&deleted) == nil && deleted.Valid {
			msg = "a deleted project had this id, and ids are not reused (the audit trail refers to it); choose another"
		}
		return &core.Error{Code: core.CodeConflict, Message: msg, Field: "project_id", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create project %q: %w", p.ID, err)
	}
	p.CreatedAt = decodeTime(createdNS)
	return nil
}

// SetProjectRateLimit sets (nil: clears) a project's rate limit. An
// unknown or deleted project is an error wrapping core.ErrNotFound.
func (db *DB) SetProjectRateLimit(ctx context.Context, id string, rl *core.RateLimit) error {
	requests, period, err := rateColumns(rl)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE projects SET rate_requests = ?, rate_period_s = ? WHERE id = ? AND deleted_at IS NULL`, requests, period, id)
	if err != nil {
		return fmt.Errorf("set rate limit of project %q: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set rate limit of project %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("project %q: %w", id, core.ErrNotFound)
	}
	return nil
}

// rateColumns is rl as its two nullable columns; an invalid rl is a
// core.CodeValidation error.
func rateColumns(rl *core.RateLimit) (requests, period sql.NullInt64, err error) {
	if rl == nil {
		return requests, period, nil
	}
	if !rl.Valid() {
		return requests, period, &core.Error{Code: core.CodeValidation, Message: "rate limit must be 1 to 1000000 requests per 1 s to 1 day", Field: "rate_limit"}
	}
	return sql.NullInt64{Int64: int64(rl.Requests), Valid: true}, sql.NullInt64{Int64: int64(rl.PeriodSeconds), Valid: true}, nil
}

// rateLimit is the rate limit two nullable columns hold (nil: none).
func rateLimit(requests, period sql.NullInt64) *core.RateLimit {
	if !requests.Valid || !period.Valid {
		return nil
	}
	return &core.RateLimit{Requests: int(requests.Int64), PeriodSeconds: int(period.Int64)}
}

// Project returns a project, or an error wrapping core.ErrNotFound (also
// for a deleted one).
func (db *DB) Project(ctx context.Context, id string) (*core.Project, error) {
	return getByID(ctx, db, "project", id, scanProject, `SELECT id, name, created_at, rate_requests, rate_period_s FROM projects WHERE id = ? AND deleted_at IS NULL`)
}

// Projects lists all projects but deleted ones, ordered by id. A new
// database has one, core.DefaultProject.
func (db *DB) Projects(ctx context.Context) ([]*core.Project, error) {
	return list(ctx, db, "list projects", scanProject, `SELECT id, name, created_at, rate_requests, rate_period_s FROM projects WHERE deleted_at IS NULL ORDER BY id`)
}

func scanProject(s scanner) (*core.Project, error) {
	var (
		p                        core.Project
		createdAt                int64
		rateRequests, ratePeriod sql.NullInt64
	)
	if err := s.Scan(&p.ID, &p.Name, &createdAt, &rateRequests, &ratePeriod); err != nil {
		return nil, err
	}
	p.CreatedAt = decodeTime(createdAt)
	p.RateLimit = rateLimit(rateRequests, ratePeriod)
	return &p, nil
}

// CreatePrincipal inserts p. p.ID must be set and unused (else a
// core.CodeConflict error), p.Role and p.Kind must be known, and p must be
// an owner exactly when it has no project; its project must exist and not
// be deleted. Those violations are core.CodeValidation errors. A zero
// p.CreatedAt is set to the current time.
func (db *DB) CreatePrincipal(ctx context.Context, p *core.Principal) error {
	switch {
	case p.ID == "":
		return &core.Error{Code: core.CodeValidation, Message: "principal id is required", Field: "principal_id"}
	case !p.Role.Valid():
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown role %q", p.Role), Field: "role"}
	case p.Kind != core.PrincipalUser && p.Kind != core.PrincipalService:
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown principal kind %q", p.Kind), Field: "kind"}
	case p.Role == core.RoleOwner && p.ProjectID != "":
		return &core.Error{Code: core.CodeValidation, Message: "an owner belongs to no project", Field: "project_id"}
	case p.Role != core.RoleOwner && p.ProjectID == "":
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("a principal with role %q needs a project", p.Role), Field: "project_id"}
	}
	created := p.CreatedAt
	if created.IsZero() {
		created = db.now().UTC()
	}
	createdNS, err := encodeTime(created)
	if err != nil {
		return err
	}
	disabledNS, err := encodeTimePtr(p.DisabledAt)
	if err != nil {
		return err
	}
	deletedNS, err := encodeTimePtr(p.DeletedAt)
	if err != nil {
		return err
	}

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create principal %q: %w", p.ID, err)
	}
	defer tx.Rollback()
	if p.ProjectID != "" {
		if err := checkProject(ctx, tx, p.ProjectID); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO principals (`+principalColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, nullString(p.ProjectID), p.Name, p.Kind, string(p.Role), createdNS, disabledNS, deletedNS)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "principal already exists", Field: "principal_id", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create principal %q: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create principal %q: commit: %w", p.ID, err)
	}
	p.CreatedAt = decodeTime(createdNS)
	return nil
}

const principalColumns = `id, project_id, name, kind, role, created_at, disabled_at, deleted_at`

// Principal returns a principal, or an error wrapping core.ErrNotFound.
func (db *DB) Principal(ctx context.Context, id string) (*core.Principal, error) {
	return getByID(ctx, db, "principal", id, scanPrincipal, `SELECT `+principalColumns+` FROM principals WHERE id = ?`)
}

// Principals lists the principals matching f, disabled and deleted ones
// included, ordered by id. An unknown project or role has none.
func (db *DB) Principals(ctx context.Context, f core.PrincipalFilter) ([]*core.Principal, error) {
	var c conditions
	c.equal("project_id", f.ProjectID)
	c.equal("role", string(f.Role))
	q := `SELECT ` + principalColumns + ` FROM principals` + c.where()
	return list(ctx, db, "list principals", scanPrincipal, q+` ORDER BY id`, c.args...)
}

// CountPrincipals counts the principals of every project and the owners.
func (db *DB) CountPrincipals(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM principals`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count principals: %w", err)
	}
	return n, nil
}

func scanPrincipal(s scanner) (*core.Principal, error) {
	var (
		p          core.Principal
		project    sql.NullString
		role       string
		createdAt  int64
		disabledAt sql.NullInt64
		deletedAt  sql.NullInt64
	)
	if err := s.Scan(&p.ID, &project, &p.Name, &p.Kind, &role, &createdAt, &disabledAt, &deletedAt); err != nil {
		return nil, err
	}
	p.ProjectID = project.String
	p.Role = core.Role(role)
	p.CreatedAt = decodeTime(createdAt)
	p.DisabledAt = decodeTimePtr(disabledAt)
	p.DeletedAt = decodeTimePtr(deletedAt)
	return &p, nil
}

// CreateAPIKey inserts k. k.ID must be set and unused (else a
// core.CodeConflict error), k.Hash must not be empty, k.Scopes must be
// known permissions and k.PrincipalID must name an existing principal
// that is not deleted; those violations are core.CodeValidation errors.
// k.ProjectID is set to the principal's project (another non-empty one is
// a core.CodeValidation error) and a zero k.CreatedAt to the current time.
//
// k.Users must be a valid users list (core.CheckUsers), else a
// core.CodeValidation error naming the bad entries. Empty Scopes, Agents
// and Users are stored as empty JSON arrays and read back as nil.
func (db *DB) CreateAPIKey(ctx context.Context, k *core.APIKey) error {
	row, err := db.encodeKey(k)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.ID, err)
	}
	defer tx.Rollback()
	if err := db.insertKey(ctx, tx, row); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create api key %q: commit: %w", k.ID, err)
	}
	row.fill(k)
	return nil
}

// RotateAPIKey inserts next, as CreateAPIKey does, and marks the key oldID
// replaced by it, its expiry moved to oldExpires unless it expires sooner,
// all in one transaction: if anything fails, nothing changes. An empty
// next.PrincipalID is set to the old key's principal; another principal
// is a core.CodeValidation error. An unknown old key is an error wrapping
// core.ErrNotFound, and a revoked or already rotated one a
// core.CodeConflict error. An expired old key may be rotated.
func (db *DB) RotateAPIKey(ctx context.Context, oldID string, oldExpires time.Time, next *core.APIKey) error {
	expiresNS, err := encodeTime(oldExpires)
	if err != nil {
		return err
	}
	row, err := db.encodeKey(next)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rotate api key %q: %w", oldID, err)
	}
	defer tx.Rollback()

	var (
		principal  string
		expires    sql.NullInt64
		revoked    sql.NullInt64
		replacedBy string
	)
	err = tx.QueryRowContext(ctx, `SELECT principal_id, expires_at, revoked_at, replaced_by FROM api_keys WHERE id = ?`, oldID).
		Scan(&principal, &expires, &revoked, &replacedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("rotate api key %q: %w", oldID, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("rotate api key %q: %w", oldID, err)
	}
	switch {
	case revoked.Valid:
		return &core.Error{Code: core.CodeConflict, Message: "api key is revoked", Field: "key_id"}
	case replacedBy != "":
		return &core.Error{Code: core.CodeConflict, Message: "api key was already rotated", Field: "key_id"}
	}
	switch row.principalID {
	case "":
		row.principalID = principal
	case principal:
	default:
		return &core.Error{Code: core.CodeValidation, Message: "a rotated key's successor must belong to the same principal", Field: "principal_id"}
	}
	if err := db.insertKey(ctx, tx, row); err != nil {
		return err
	}
	if expires.Valid && expires.Int64 < expiresNS {
		expiresNS = expires.Int64
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET replaced_by = ?, expires_at = ? WHERE id = ?`,
		row.id, expiresNS, oldID); err != nil {
		return fmt.Errorf("rotate api key %q: %w", oldID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("rotate api key %q: commit: %w", oldID, err)
	}
	row.fill(next)
	return nil
}

// keyRow is an APIKey encoded for its table.
type keyRow struct {
	id, principalID, projectID, name string
	hash                             []byte
	scopes, agents, users            string
	createdAt                        int64
	expiresAt, revokedAt, lastUsedAt any // int64 or nil
	lastUsedIP, replacedBy           string
	rateRequests, ratePeriod         sql.NullInt64
	rateByOwner                      bool
}

// fill sets the fields of k the store fills in.
func (r *keyRow) fill(k *core.APIKey) {
	k.PrincipalID = r.principalID
	k.ProjectID = r.projectID
	k.CreatedAt = decodeTime(r.createdAt)
}

// encodeKey validates k and encodes it; the project is looked up later.
func (db *DB) encodeKey(k *core.APIKey) (*keyRow, error) {
	if k.ID == "" {
		return nil, &core.Error{Code: core.CodeValidation, Message: "api key id is required", Field: "key_id"}
	}
	if len(k.Hash) == 0 {
		return nil, &core.Error{Code: core.CodeValidation, Message: "api key hash is required"}
	}
	for _, p := range k.Scopes {
		if !p.Valid() {
			return nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown scope %q", p), Field: "scopes"}
		}
	}
	for _, a := range k.Agents {
		// JSON would replace invalid UTF-8, changing the id.
		if !utf8.ValidString(a) {
			return nil, &core.Error{Code: core.CodeValidation, Message: "agent id is not valid UTF-8", Field: "agents"}
		}
	}
	// Entries are valid UTF-8 (so JSON keeps them as they are) and
	// exact ids or prefixes: what the store holds is what is checked.
	if err := core.CheckUsers(k.Users); err != nil {
		return nil, err
	}
	r := &keyRow{
		id: k.ID, principalID: k.PrincipalID, projectID: k.ProjectID, name: k.Name, hash: k.Hash,
		lastUsedIP: k.LastUsedIP, replacedBy: k.ReplacedBy, rateByOwner: k.RateLimitByOwner && k.RateLimit != nil,
	}
	var err error
	if r.rateRequests, r.ratePeriod, err = rateColumns(k.RateLimit); err != nil {
		return nil, err
	}
	if r.scopes, err = jsonArray(k.Scopes); err != nil {
		return nil, fmt.Errorf("api key %q: encode scopes: %w", k.ID, err)
	}
	if r.agents, err = jsonArray(k.Agents); err != nil {
		return nil, fmt.Errorf("api key %q: encode agents: %w", k.ID, err)
	}
	if r.users, err = jsonArray(k.Users); err != nil {
		return nil, fmt.Errorf("api key %q: encode users: %w", k.ID, err)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = db.now().UTC()
	}
	if r.createdAt, err = encodeTime(created); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		in  *time.Time
		out *any
	}{{k.ExpiresAt, &r.expiresAt}, {k.RevokedAt, &r.revokedAt}, {k.LastUsedAt, &r.lastUsedAt}} {
		if *t.out, err = encodeTimePtr(t.in); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// insertKey inserts r in tx, after checking its principal (it must exist
// and not be deleted) and taking the principal's project.
func (db *DB) insertKey(ctx context.Context, tx *sql.Tx, r *keyRow) error {
	var (
		project sql.NullString
		deleted sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT project_id, deleted_at FROM principals WHERE id = ?`, r.principalID).Scan(&project, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("principal %q does not exist", r.principalID), Field: "principal_id"}
	}
	if err != nil {
		return fmt.Errorf("create api key %q: read principal: %w", r.id, err)
	}
	if deleted.Valid {
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("principal %q was deleted", r.principalID), Field: "principal_id"}
	}
	if r.projectID != "" && r.projectID != project.String {
		return &core.Error{Code: core.CodeValidation, Message: "an api key's project must be its principal's", Field: "project_id"}
	}
	r.projectID = project.String
	_, err = tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.id, r.principalID, nullString(r.projectID), r.name, r.hash, r.scopes, r.agents,
		r.createdAt, r.expiresAt, r.revokedAt, r.lastUsedAt, r.lastUsedIP, r.replacedBy, r.rateRequests, r.ratePeriod, r.rateByOwner, r.users)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "api key already exists", Field: "key_id", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create api key %q: %w", r.id, err)
	}
	return nil
}

const keyColumns = `id, principal_id, project_id, name, hash, scopes, agents,
	created_at, expires_at, revoked_at, last_used_at, last_used_ip, replaced_by, rate_requests, rate_period_s, rate_by_owner, users`

// APIKey returns a key by id, or an error wrapping core.ErrNotFound.
func (db *DB) APIKey(ctx context.Context, id string) (*core.APIKey, error) {
	return getByID(ctx, db, "api key", id, scanKey, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`)
}

// APIKeys lists the keys matching f, newest first (ties broken by id,
// descending), revoked and expired ones included. With f.Limit (capped
// at MaxLimit) it answers one page, after f.After when set: keyset
// paging on the (project_id|principal_id,) created_at, id indexes, so a
// page reads its own rows only.
func (db *DB) APIKeys(ctx context.Context, f core.KeyFilter) ([]*core.APIKey, error) {
	q, args, err := keysQuery(f)
	if err != nil {
		return nil, err
	}
	return list(ctx, db, "list api keys", scanKey, q, args...)
}

// keysQuery is the query of APIKeys(f) and its arguments.
func keysQuery(f core.KeyFilter) (string, []any, error) {
	if f.Limit < 0 {
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	}
	var c conditions
	c.equal("project_id", f.ProjectID)
	c.equal("principal_id", f.PrincipalID)
	if f.After != nil {
		after, err := encodeTime(f.After.CreatedAt)
		if err != nil {
			return "", nil, err
		}
		// As for invocations: the first term bounds the index range; the
		// second drops the cursor's own time up to and including its id.
		c.add("created_at <= ? AND (created_at < ? OR id < ?)", after, after, f.After.ID)
	}
	q := `SELECT ` + keyColumns + ` FROM api_keys` + c.where() + ` ORDER BY created_at DESC, id DESC`
	if f.Limit > 0 {
		return q + ` LIMIT ?`, append(c.args, min(f.Limit, MaxLimit)), nil
	}
	return q, c.args, nil
}

// RevokeAPIKey marks a key revoked at t. A key already revoked keeps its
// first revocation time; an unknown key is an error wrapping
// core.ErrNotFound.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, t time.Time) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at, id)
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", id, err)
	}
	return db.keyUpdated(ctx, res, "revoke", id)
}

// TouchAPIKey records that a key was used at t from ip. An earlier t than
// the recorded last use changes nothing, so that concurrent touches keep
// the latest. An unknown key is an error wrapping core.ErrNotFound.
func (db *DB) TouchAPIKey(ctx context.Context, id string, t time.Time, ip string) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `
UPDATE api_keys SET last_used_at = ?, last_used_ip = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, at, ip, id, at)
	if err != nil {
		return fmt.Errorf("touch api key %q: %w", id, err)
	}
	return db.keyUpdated(ctx, res, "touch", id)
}

// keyUpdated returns nil if the conditional update res changed a row or
// key id exists (the condition was false), and an error wrapping
// core.ErrNotFound otherwise.
func (db *DB) keyUpdated(ctx context.Context, res sql.Result, op, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s api key %q: %w", op, id, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = db.write.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s api key %q: %w", op, id, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s api key %q: %w", op, id, err)
	}
	return nil
}

func scanKey(s scanner) (*core.APIKey, error) {
	var (
		k                                core.APIKey
		project                          sql.NullString
		scopes, agents, users            string
		createdAt                        int64
		expiresAt, revokedAt, lastUsedAt sql.NullInt64
		rateRequests, ratePeriod         sql.NullInt64
	)
	err := s.Scan(&k.ID, &k.PrincipalID, &project, &k.Name, &k.Hash, &scopes, &agents,
		&createdAt, &expiresAt, &revokedAt, &lastUsedAt, &k.LastUsedIP, &k.ReplacedBy, &rateRequests, &ratePeriod, &k.RateLimitByOwner, &users)
	if err != nil {
		return nil, err
	}
	k.ProjectID = project.String
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("decode scopes of api key %q: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(agents), &k.Agents); err != nil {
		return nil, fmt.Errorf("decode agents of api key %q: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(users), &k.Users); err != nil {
		return nil, fmt.Errorf("decode users of api key %q: %w", k.ID, err)
	}
	if len(k.Scopes) == 0 {
		k.Scopes = nil
	}
	if len(k.Agents) == 0 {
		k.Agents = nil
	}
	if len(k.Users) == 0 {
		k.Users = nil
	}
	k.CreatedAt = decodeTime(createdAt)
	k.ExpiresAt = decodeTimePtr(expiresAt)
	k.RevokedAt = decodeTimePtr(revokedAt)
	k.LastUsedAt = decodeTimePtr(lastUsedAt)
	k.RateLimit = rateLimit(rateRequests, ratePeriod)
	return &k, nil
}

// jsonArray encodes xs as a JSON array; nil is [].
func jsonArray[T any](xs []T) (string, error) {
	if len(xs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(xs)
	return string(b), err
}

// nullString binds "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func decodeTimePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := decodeTime(n.Int64)
	return &t
}
