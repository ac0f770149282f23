package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/runagent/runagent/internal/core"
)

// KeyRotator rotates the data keys that encrypt data at rest (the
// keyring).
type KeyRotator interface {
	RotateDataKey(ctx context.Context) (uint32, error)
	ActiveKeyID() uint32
	MasterKeyID() string
}

// keyringStatus answers which keys are in use (ids only).
func (h *trailHandlers) keyringStatus(w http.ResponseWriter, r *http.Request) error {
	if h.keyring == nil {
		return core.Errorf(core.CodeNotFound, "this server has no keyring")
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"master_key_id": h.keyring.MasterKeyID(), "active_data_key_id": h.keyring.ActiveKeyID()})
	return nil
}

// rotateDataKey makes a new data key the active one: what is sealed from
// now on uses it; what was sealed before stays readable.
func (h *trailHandlers) rotateDataKey(w http.ResponseWriter, r *http.Request) error {
	if h.keyring == nil {
		return core.Errorf(core.CodeNotFound, "this server has no keyring")
	}
	id, err := h.keyring.RotateDataKey(r.Context())
	if err != nil {
		var ce *core.Error
		if !errors.As(err, &ce) {
			err = &core.Error{Code: core.CodeInternal, Message: "the data key could not be rotated (if the master key was rotated offline, restart the server first)", Err: err}
		}
		return err
	}
	noteAudit(r, "active_data_key_id", strconv.FormatUint(uint64(id), 10))
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "data key rotated",
		Details: map[string]string{"active_data_key_id": strconv.FormatUint(uint64(id), 10)}})
	h.writeData(w, r, http.StatusOK, map[string]any{"master_key_id": h.keyring.MasterKeyID(), "active_data_key_id": id})
	return nil
}
