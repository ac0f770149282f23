package audit

import (
	"bytes"
	"testing"
	"time"
)

// FuzzJournalFrames: parseFrames reads any bytes without panicking; what
// it returns encodes back to the bytes it consumed, and every record
// matches its hash.
func FuzzJournalFrames(f *testing.F) {
	const epoch = 7
	j := &journal{epoch: epoch}
	r1 := Record{Seq: 1, Time: time.Unix(1700000000, 5).UTC(), Action: "key.create", Outcome: OutcomeSuccess,
		Details: map[string]string{"a": "1", "b": "ü"}, PrevHash: zeroHash}
	r1.Hash = r1.ComputeHash()
	r2 := Record{Seq: 2, Time: time.Unix(1700000001, 0).UTC(), Action: "secret.read", Outcome: OutcomeDenied,
		IP: "192.0.2.1", UserAgent: "x", PrevHash: r1.Hash}
	r2.Hash = r2.ComputeHash()
	whole := bytes.Clone(j.encode([]Record{r1, r2}))
	f.Add(whole)
	f.Add(whole[:len(whole)-20])                    // torn
	f.Add(append(bytes.Clone(whole[:30]), 0, 0, 0)) // torn in the first frame
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, n, err := parseFrames(b, epoch)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		for i := range recs {
			if !bytes.Equal(recs[i].ComputeHash(), recs[i].Hash) {
				t.Fatalf("record %d does not match its hash", recs[i].Seq)
			}
		}
		if err != nil {
			return
		}
		re := (&journal{epoch: epoch}).encode(recs)
		re = re[:len(re)-frameHeaderSize] // the terminator
		if !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoded frames differ from the %d bytes read", n)
		}
		for i := range recs {
			if got, want := payloadSize(&recs[i]), len(appendPayload(nil, &recs[i])); got != want {
				t.Fatalf("payloadSize = %d, want %d", got, want)
			}
		}
	})
}
