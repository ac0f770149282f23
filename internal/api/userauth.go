package api

import (
	"net/http"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// A user_id that reaches someone's state is authorization. A run that
// asks for persistent memory (or a sandbox kept per user) opens the state
// of the end user its user_id names, so the request's credential must be
// entitled to act for that user (auth.Identity.MayActForUser): an API key
// for the users it was created with (users; runagent keys create
// --users), an OIDC token for its own subject. A user_id that only labels
// a run is recorded as given and checks nothing, so SDKs that always send
// one keep working.

// authorizeUser returns nil if the request's identity may act for the end
// user userID, and otherwise records a user_denied security event and
// returns a 403 FORBIDDEN on field user_id saying what would grant it. An
// empty userID names nobody to open: 400 VALIDATION_ERROR, no event.
// Call it before anything of the user's state is opened.
func (h *runHandlers) authorizeUser(r *http.Request, userID string) error {
	if userID == "" {
		return fieldError("user_id", "persistent_memory needs a user_id: the end user whose memory the run opens")
	}
	id := identity(r)
	if id.MayActForUser(userID) {
		return nil
	}
	ev := core.SecurityEvent{Type: core.EventUserDenied,
		Message: "a run asked for the state of an end user its credential may not act for",
		Details: map[string]string{"user_id": userID, "method": id.Method, "path": r.URL.Path}}
	if d := agentOf(r); d != nil {
		ev.AgentID = d.AgentID
	}
	h.emit(r, ev)
	noteAudit(r, "refused_part", "user_id")
	return &core.Error{Code: core.CodeForbidden, Field: "user_id", Message: userDeniedMessage(id)}
}

// userDeniedMessage says why id may not act for the user_id it sent and
// what would let it, without repeating the user id.
func userDeniedMessage(id auth.Identity) string {
	switch id.Method {
	case auth.MethodAPIKey:
		return "this API key may not act for this user_id: a key acts only for the end users in its users list " +
			"(exact ids, prefixes such as team-*, or * for every user), set when it is created " +
			"(runagent keys create --users, or \"users\" in POST /api/v1/keys); ask an admin for a key whose users include it"
	case auth.MethodOIDC:
		return "an access token acts only for its own subject: send the token's sub claim as user_id, " +
			"or use an API key created with users that include this user_id"
	}
	return "a request without a credential acts for no end user: send an API key created with users " +
		"that include this user_id (runagent keys create --users), or serve with --auth none for local development"
}
