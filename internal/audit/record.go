package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

// Actions the package itself records. Callers name theirs the same way:
// "<resource kind>.<verb>", lower case, such as "key.create",
// "invocation.run" or "secret.read".
const (
	ActionPurge = "audit.purge"
)

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// Limits on a record. Append refuses a record that breaks the ones on
// names (Action, Outcome, detail keys, the number of details): those are
// chosen by code, and breaking them is a bug. Values, which may come from
// a client, are made to fit instead (see Append).
const (
	MaxNameBytes  = 64   // Action, Outcome, a detail key
	MaxFieldBytes = 1024 // PrincipalID, KeyID, Subject, Resource, IP, UserAgent, RequestID
	MaxValueBytes = 4096 // a detail value
	MaxDetails    = 64   // Details and SensitiveDetails together
)

// HashSize is the size of Record.Hash and Record.PrevHash.
const HashSize = sha256.Size

// Record is one entry of the audit trail: who (PrincipalID, KeyID,
// Subject) did what (Action) to what (Resource), with which Outcome, from
// where (IP, UserAgent) and in which request (RequestID).
//
// Seq, PrevHash and Hash are assigned by the Log; Seq numbers the records
// 1, 2, 3, ... in the order they were committed.
type Record struct {
	Seq         int64
	Time        time.Time // UTC
	PrincipalID string
	KeyID       string
	Subject     string // the OIDC subject, for a token
	Action      string // such as "key.create"
	Resource    string // such as "agent/<id>" or "key/<id>"
	Outcome     string // OutcomeSuccess, OutcomeDenied, OutcomeError, ...
	IP          string
	UserAgent   string
	RequestID   string
	Details     map[string]string

	// SensitiveDetails are details whose values must be matchable but not
	// readable in the trail, such as a token or a secret's value. Append
	// stores each as Details[key] = Log.HMAC(value) and clears this map;
	// it is never stored, hashed or encoded.
	SensitiveDetails map[string]string

	PrevHash []byte // the previous record's Hash (HashSize bytes)
	Hash     []byte // ComputeHash(): SHA-256 over PrevHash and the rest
}

// Domain separators: the first field of each canonical encoding, so that
// the bytes of one kind of object never read as another's.
const (
	recordDomain     = "runagent.audit.record.v1"
	checkpointDomain = "runagent.audit.checkpoint.v1"
)

// ComputeHash returns the hash r must have:
//
//	SHA-256(PrevHash || canonical(r))
//
// where canonical(r) is, with str(s) = uint64be(len(s)) || s:
//
//	str("runagent.audit.record.v1")
//	uint64be(Seq)
//	int64be(Time as unix nanoseconds)
//	str(PrincipalID) str(KeyID) str(Subject) str(Action) str(Resource)
//	str(Outcome) str(IP) str(UserAgent) str(RequestID)
//	uint64be(len(Details))
//	str(key) str(value) for each detail, keys sorted bytewise
//
// Every variable-length field carries its length, so two different
// records never encode alike; Details nil and empty encode alike, as they
// are stored alike. SensitiveDetails is not part of it: Append has moved
// it into Details.
func (r *Record) ComputeHash() []byte {
	h := sha256.New()
	h.Write(r.PrevHash)
	h.Write(r.canonical(make([]byte, 0, 512)))
	return h.Sum(nil)
}

// canonical appends the canonical encoding of r, less PrevHash, to b.
func (r *Record) canonical(b []byte) []byte {
	b = appendStr(b, recordDomain)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	for _, s := range [...]string{r.PrincipalID, r.KeyID, r.Subject, r.Action, r.Resource, r.Outcome, r.IP, r.UserAgent, r.RequestID} {
		b = appendStr(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(r.Details)))
	for _, k := range slices.Sorted(maps.Keys(r.Details)) {
		b = appendStr(b, k)
		b = appendStr(b, r.Details[k])
	}
	return b
}

func appendStr[S string | []byte](b []byte, s S) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// zeroHash is the PrevHash of the first record of a trail that was never
// purged.
var zeroHash = make([]byte, HashSize)

// prepare returns the record Append queues for rec: names checked, values
// made storable, sensitive details HMAC'd with hmac, Seq and hashes
// cleared. Maps are copied, so the caller may reuse its own.
func prepare(rec Record, hmac func(string) string) (Record, error) {
	r := rec
	r.Seq, r.PrevHash, r.Hash, r.SensitiveDetails = 0, nil, nil, nil
	if !validName(r.Action) {
		return r, invalid("action", "audit action %q must be 1 to %d bytes of a-z, 0-9, '.', '_' or '-'", r.Action, MaxNameBytes)
	}
	if !validName(r.Outcome) {
		return r, invalid("outcome", "audit outcome %q must be 1 to %d bytes of a-z, 0-9, '.', '_' or '-'", r.Outcome, MaxNameBytes)
	}
	if !r.Time.IsZero() {
		r.Time = r.Time.UTC()
		if !time.Unix(0, r.Time.UnixNano()).Equal(r.Time) {
			return r, invalid("time", "audit time %s is out of range", r.Time.Format(time.RFC3339Nano))
		}
	}
	for _, p := range [...]*string{&r.PrincipalID, &r.KeyID, &r.Subject, &r.Resource, &r.IP, &r.UserAgent, &r.RequestID} {
		*p = fit(*p, MaxFieldBytes)
	}
	if n := len(rec.Details) + len(rec.SensitiveDetails); n > MaxDetails {
		return r, invalid("details", "audit record has %d details, more than %d", n, MaxDetails)
	}
	r.Details = nil
	if n := len(rec.Details) + len(rec.SensitiveDetails); n > 0 {
		r.Details = make(map[string]string, n)
	}
	for k, v := range rec.Details {
		if !validKey(k) {
			return r, invalid("details", "audit detail key %q must be 1 to %d bytes of A-Z, a-z, 0-9, '.', '_' or '-'", k, MaxNameBytes)
		}
		r.Details[k] = fit(v, MaxValueBytes)
	}
	for k, v := range rec.SensitiveDetails {
		if !validKey(k) {
			return r, invalid("details", "audit detail key %q must be 1 to %d bytes of A-Z, a-z, 0-9, '.', '_' or '-'", k, MaxNameBytes)
		}
		if _, dup := r.Details[k]; dup {
			return r, invalid("details", "audit detail %q is both sensitive and not", k)
		}
		r.Details[k] = hmac(v)
	}
	return r, nil
}

func invalid(field, format string, args ...any) error {
	return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf(format, args...), Field: field}
}

// validName reports whether s is a valid Action or Outcome.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameBytes {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validKey reports whether s is a valid detail key.
func validKey(s string) bool {
	if s == "" || len(s) > MaxNameBytes {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// fit returns s made storable and at most limit bytes long: bytes that are
// not UTF-8 and NULs become U+FFFD, and a longer string is cut at a rune
// boundary and ends in "…".
func fit(s string, limit int) string {
	if len(s) <= limit && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// recordJSON is the JSON form of a Record: hashes in hex, the time in
// RFC 3339 with nanoseconds.
type recordJSON struct {
	Seq         int64             `json:"seq"`
	Time        time.Time         `json:"time"`
	PrincipalID string            `json:"principal_id"`
	KeyID       string            `json:"key_id"`
	Subject     string            `json:"subject"`
	Action      string            `json:"action"`
	Resource    string            `json:"resource"`
	Outcome     string            `json:"outcome"`
	IP          string            `json:"ip"`
	UserAgent   string            `json:"user_agent"`
	RequestID   string            `json:"request_id"`
	Details     map[string]string `json:"details,omitempty"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

// MarshalJSON encodes r as one JSON object with snake_case keys, hashes
// in hex. SensitiveDetails is never encoded.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordJSON{
		Seq: r.Seq, Time: r.Time, PrincipalID: r.PrincipalID, KeyID: r.KeyID, Subject: r.Subject,
		Action: r.Action, Resource: r.Resource, Outcome: r.Outcome, IP: r.IP, UserAgent: r.UserAgent,
		RequestID: r.RequestID, Details: r.Details,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	})
}

// UnmarshalJSON decodes what MarshalJSON encodes, so that an export can be
// read back and its chain checked with ComputeHash.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	prev, err := hex.DecodeString(j.PrevHash)
	if err != nil {
		return fmt.Errorf("audit record: prev_hash: %w", err)
	}
	hash, err := hex.DecodeString(j.Hash)
	if err != nil {
		return fmt.Errorf("audit record: hash: %w", err)
	}
	if len(j.Details) == 0 {
		j.Details = nil
	}
	*r = Record{
		Seq: j.Seq, Time: j.Time.UTC(), PrincipalID: j.PrincipalID, KeyID: j.KeyID, Subject: j.Subject,
		Action: j.Action, Resource: j.Resource, Outcome: j.Outcome, IP: j.IP, UserAgent: j.UserAgent,
		RequestID: j.RequestID, Details: j.Details, PrevHash: nilIfEmpty(prev), Hash: nilIfEmpty(hash),
	}
	return nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Checkpoint stands for the records a purge deleted: the last of them,
// Seq, had hash Hash. Signature is HMAC-SHA256 over the canonical
// encoding of the other fields with a key derived from the Log's key (see
// Verify), so that only the holder of the key can write one.
type Checkpoint struct {
	Seq       int64     // purged through: the last deleted record's seq
	Hash      []byte    // that record's hash
	Time      time.Time // when the purge wrote it, UTC
	Signature []byte
}

// canonical returns the bytes a checkpoint's signature covers:
//
//	str("runagent.audit.checkpoint.v1") uint64be(Seq) str(Hash) int64be(Time as unix nanoseconds)
func (c *Checkpoint) canonical() []byte {
	b := appendStr(make([]byte, 0, 96), checkpointDomain)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = appendStr(b, c.Hash)
	return binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
}

// Head is the end of the chain: the last record's seq and hash or, when
// every record was purged, the latest checkpoint's. A trail that never
// held a record has Seq 0 and a nil Hash.
type Head struct {
	Seq  int64
	Hash []byte
}

// prevHash returns the hash the record after h links to.
func (h Head) prevHash() []byte {
	if h.Seq == 0 && len(h.Hash) == 0 {
		return zeroHash
	}
	return h.Hash
}
