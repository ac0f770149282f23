package oidc

import (
	"strings"
	"testing"
)

// FuzzVerify: any string is rejected with an *Error, never a panic, and
// the error text never repeats the input.
func FuzzVerify(f *testing.F) {
	idp := newTestIdP(f, "rsa1", "ec1", "ed1")
	v := mustVerifier(f, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	valid := idp.token("rsa1", nil)
	for _, s := range []string{
		valid,
		idp.token("ec1", map[string]any{"exp": nil}),
		idp.token("ed1", map[string]any{"runagent_role": "root"}),
		tamperString(valid),
		valid + ".",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.",
		"eyJ.eyJ.eyJ",
		"",
		"ra_live_4f9c2b7e8d1a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(t.Context(), raw)
		if raw == valid {
			if err != nil {
				t.Fatalf("Verify(valid) = %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("Verify(%q) = %+v, want an error", raw, id)
		}
		e, ok := err.(*Error)
		if !ok || e.Reason == "" {
			t.Fatalf("Verify(%q) = %v (%T), want an *Error with a reason", raw, err, err)
		}
		if len(raw) >= 32 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error text %q contains the input", err.Error())
		}
	})
}

// tamperString swaps the first character of raw's payload.
func tamperString(raw string) string {
	i := strings.IndexByte(raw, '.') + 2
	c := byte('A')
	if raw[i] == 'A' {
		c = 'B'
	}
	return raw[:i] + string(c) + raw[i+1:]
}
