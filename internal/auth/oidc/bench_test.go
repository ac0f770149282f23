package oidc

import "testing"

// BenchmarkVerify measures Verify with the key cached: the cost of every
// authenticated request after the first.
func BenchmarkVerify(b *testing.B) {
	idp := newTestIdP(b, "rsa1", "ec1", "ed1")
	v := mustVerifier(b, Config{Issuers: []IssuerConfig{idp.issuerConfig()}})
	for _, kid := range []string{"rsa1", "ec1", "ed1"} {
		raw := idp.token(kid, nil)
		b.Run(mustKey(b, kid).method.Alg(), func(b *testing.B) {
			ctx := b.Context()
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
