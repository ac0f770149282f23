package server

import (
	"context"
	"io"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
)

// RecoveredOwner is the owner RecoverOwner made.
type RecoveredOwner struct {
	PrincipalID string
	KeyID       string
}

// RecoverOwner gives a data directory whose owner key is lost a new
// owner: a principal with a new key, valid for a year, written once to
// out as the first start does. The caller holds the data directory (no
// server runs on it) and records the recovery in the audit trail.
func RecoverOwner(ctx context.Context, st core.Store, out io.Writer, now time.Time) (RecoveredOwner, error) {
	token, _, _ := apikey.New()
	k, err := apikey.Parse(token)
	if err != nil {
		return RecoveredOwner{}, err
	}
	p, err := createOwner(ctx, st, k, "recovered owner key", now)
	if err != nil {
		return RecoveredOwner{}, err
	}
	showOwnerKey(out, "A new owner API key for this data directory", token)
	return RecoveredOwner{PrincipalID: p.ID, KeyID: k.ID}, nil
}
