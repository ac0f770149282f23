package api

import (
	"net/http"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/webhook"
)

// Completion webhooks of an invocation: each delivery, how it went, and
// every attempt. Who may read the invocation may read its deliveries;
// the URLs are shown without their query (it may hold a token).

func (h *invocationHandlers) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("invocation_id")
	if !validID(id) {
		return core.Errorf(core.CodeNotFound, "invocation %s not found", quoteID(id))
	}
	inv, err := h.store.Invocation(r.Context(), id)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return core.Errorf(core.CodeNotFound, "invocation %q not found", id)
		}
		return err
	}
	if !identity(r).CanAgent(inv.ProjectID, inv.AgentID) {
		return core.Errorf(core.CodeNotFound, "invocation %q not found", id)
	}
	ds, err := h.store.WebhookDeliveries(r.Context(), id)
	if err != nil {
		return err
	}
	for _, d := range ds {
		d.URL = webhook.ShownURL(d.URL)
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"invocation_id": id, "deliveries": ds, "count": len(ds)})
	return nil
}
