package oidc

// Reason says precisely why a token was rejected, for the security log.
// Clients never see it: every rejection is the same 401 to them.
type Reason string

// The reasons Verify gives.
const (
	ReasonOversized         Reason = "oversized"          // longer than Config.MaxTokenBytes
	ReasonMalformed         Reason = "malformed"          // not three base64url JSON segments
	ReasonUnknownIssuer     Reason = "unknown issuer"     // iss names no configured issuer
	ReasonAlgNotAllowed     Reason = "alg not allowed"    // alg is none, HS*, or not in the issuer's list
	ReasonUnsupportedHeader Reason = "unsupported header" // a "crit" header: no extension is understood
	ReasonIssuerUnavailable Reason = "issuer unavailable" // discovery or the first JWKS fetch failed
	ReasonUnknownKey        Reason = "unknown key"        // no published key matches kid (after a refetch)
	ReasonBadSignature      Reason = "bad signature"      // the signature does not verify
	ReasonExpired           Reason = "expired"            // exp has passed, beyond the leeway
	ReasonNotYetValid       Reason = "not yet valid"      // nbf is ahead, beyond the leeway
	ReasonIssuedInFuture    Reason = "issued in future"   // iat is ahead, beyond the leeway
	ReasonWrongAudience     Reason = "wrong audience"     // aud names none of the accepted audiences
	ReasonWrongIssuer       Reason = "wrong issuer"       // the verified iss differs from the selected issuer
	ReasonMissingClaim      Reason = "missing claim"      // Detail names it: iss, sub, exp or aud
	ReasonInvalidClaim      Reason = "invalid claim"      // a claim of the wrong type or value; Detail names it
	ReasonMissingProject    Reason = "missing project claim"
	ReasonMissingRole       Reason = "missing role claim"
	ReasonInvalidRole       Reason = "invalid role" // the role is not one of the valid roles
	ReasonCanceled          Reason = "canceled"     // the caller's context ended first
	ReasonClosed            Reason = "verifier closed"
)

// Error is the error Verify returns for every rejected token. Its text is
// built only from the Reason, the configured issuer, and Detail, so it is
// safe for a security log: it never contains the token or any part of it.
type Error struct {
	Reason Reason
	// Issuer is the configured issuer the token named, or empty when the
	// token named none.
	Issuer string
	// Detail is a short, safe elaboration: a claim name, an algorithm from
	// the known list, or why an issuer's keys could not be fetched.
	Detail string
	// Err is the underlying cause, for errors.Is. Its text is not part of
	// Error() because library errors may quote header values (a key ID).
	Err error
}

func (e *Error) Error() string {
	s := "oidc: token rejected: " + string(e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Issuer != "" {
		s += " (issuer " + e.Issuer + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func reject(r Reason, issuer, detail string, cause error) *Error {
	return &Error{Reason: r, Issuer: issuer, Detail: detail, Err: cause}
}
