package ratelimit

import (
	"net/http"
	"strconv"
)

// SetHeaders writes r to h in the fields of the IETF RateLimit header
// draft: RateLimit-Limit (the burst: the most Remaining can be),
// RateLimit-Remaining, RateLimit-Reset (seconds until the bucket is full,
// rounded up) and RateLimit-Policy (see Limit.Policy); and, when r denies
// the request, Retry-After in whole seconds, rounded up and at least 1.
func SetHeaders(h http.Header, r Result) {
	h.Set("RateLimit-Limit", strconv.Itoa(r.Limit.burst()))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, r.Remaining)))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	h.Set("RateLimit-Policy", r.Limit.Policy())
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(r.RetryAfter)), 10))
	}
}
