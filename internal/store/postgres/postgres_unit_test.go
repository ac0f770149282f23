package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/runagent/runagent/internal/core"
)

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`SELECT '?' FROM t WHERE b = ?`, `SELECT '?' FROM t WHERE b = $1`},
		{`SELECT "a?" FROM t WHERE b = ?`, `SELECT "a?" FROM t WHERE b = $1`},
		{`SELECT 'it''s ?' , ?`, `SELECT 'it''s ?' , $1`},
		{`VALUES (?, ?), (?, ?)`, `VALUES ($1, $2), ($3, $4)`},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"server shutting down", fmt.Errorf("exec: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, false},
		{"bad connection", driver.ErrBadConn, true},
		{"cancelled", context.Canceled, false},
		{"other", errors.New("boom"), false},
		{"given up", &core.Error{Code: core.CodeUnavailable, Err: &unavailable{tries: 5, err: driver.ErrBadConn}}, false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestRetryBounded: retry runs a failing operation retryAttempts times,
// then gives up with CodeUnavailable; an error another try cannot mend
// is returned at once.
func TestRetryBounded(t *testing.T) {
	n := 0
	err := retry(t.Context(), func() error { n++; return &pgconn.PgError{Code: "40001"} })
	if n != retryAttempts || core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("retry of a serialization failure: %d tries, %v; want %d tries and %s", n, err, retryAttempts, core.CodeUnavailable)
	}
	n = 0
	err = retry(t.Context(), func() error { n++; return &pgconn.PgError{Code: "23505"} })
	if n != 1 || !isConstraint(err) {
		t.Errorf("retry of a unique violation: %d tries, %v; want 1 try and the violation", n, err)
	}
	n = 0
	err = retry(t.Context(), func() error {
		if n++; n < 3 {
			return driver.ErrBadConn
		}
		return nil
	})
	if n != 3 || err != nil {
		t.Errorf("retry of an operation that succeeds at the third try: %d tries, %v", n, err)
	}
}
