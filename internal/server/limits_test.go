package server

import (
	"fmt"
	"testing"
	"time"
)

// FuzzParseRate: whatever ParseRate accepts is in range, whole seconds,
// and reads back the same from its canonical form.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/1m", "10/1.5s", "1/24h", "9/0s", "1e3/1m", "/", "1//1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseRate(s)
		if err != nil {
			return
		}
		if l.Rate < 1 || l.Rate > 1_000_000 || l.Burst != l.Rate || l.Period < time.Second || l.Period > 24*time.Hour || l.Period%time.Second != 0 {
			t.Fatalf("ParseRate(%q) = %+v", s, l)
		}
		again, err := ParseRate(fmt.Sprintf("%d/%ds", l.Rate, l.Period/time.Second))
		if err != nil || again != l {
			t.Fatalf("ParseRate(%q) = %+v does not round-trip: %+v, %v", s, l, again, err)
		}
	})
}
