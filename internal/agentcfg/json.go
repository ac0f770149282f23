package agentcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// member is one key/value pair of a JSON object, in file order.
type member struct {
	key string
	val json.RawMessage
}

// kind names the JSON type of raw, which must be a valid JSON value.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw json.RawMessage) bool { return kind(raw) == "null" }

// object decodes raw as a JSON object, reporting duplicate keys (and
// dropping the repeats). ok is false if raw is not an object.
func (p *parser) object(field string, raw json.RawMessage) (members []member, ok bool) {
	if k := kind(raw); k != "object" {
		p.errorf(field, "must be an object, not %s", article(k))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		p.errorf(field, "invalid JSON: %v", err)
		return nil, false
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			p.errorf(field, "invalid JSON: %v", err)
			return nil, false
		}
		key, isKey := tok.(string)
		if !isKey {
			p.errorf(field, "invalid JSON: object key is not a string")
			return nil, false
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			p.errorf(fieldName(field, key), "invalid JSON: %v", err)
			return nil, false
		}
		if seen[key] {
			p.errorf(fieldName(field, key), "duplicate key")
			continue
		}
		seen[key] = true
		members = append(members, member{key: key, val: val})
	}
	return members, true
}

// array decodes raw as a JSON array.
func (p *parser) array(field string, raw json.RawMessage) ([]json.RawMessage, bool) {
	if k := kind(raw); k != "array" {
		p.errorf(field, "must be a list, not %s", article(k))
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.errorf(field, "invalid JSON: %v", err)
		return nil, false
	}
	return items, true
}

// str decodes raw as a JSON string.
func (p *parser) str(field string, raw json.RawMessage) (string, bool) {
	if k := kind(raw); k != "string" {
		p.errorf(field, "must be a string, not %s", article(k))
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.errorf(field, "invalid JSON: %v", err)
		return "", false
	}
	return s, true
}

// boolean decodes raw as true or false.
func (p *parser) boolean(field string, raw json.RawMessage) (bool, bool) {
	if k := kind(raw); k != "boolean" {
		p.errorf(field, "must be a boolean (true or false), not %s", article(k))
		return false, false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		p.errorf(field, "invalid JSON: %v", err)
		return false, false
	}
	return b, true
}

// number decodes raw as a finite JSON number.
func (p *parser) number(field string, raw json.RawMessage) (float64, bool) {
	if k := kind(raw); k != "number" {
		p.errorf(field, "must be a number, not %s", article(k))
		return 0, false
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		p.errorf(field, "number %s is out of range", truncate(string(raw)))
		return 0, false
	}
	return f, true
}

// integer decodes raw as a whole JSON number. 8, 8.0 and 8e0 are all 8.
func (p *parser) integer(field string, raw json.RawMessage) (int64, bool) {
	if k := kind(raw); k != "number" {
		p.errorf(field, "must be a whole number, not %s", article(k))
		return 0, false
	}
	text := string(bytes.TrimSpace(raw))
	n, err := strconv.ParseInt(text, 10, 64)
	if err == nil {
		return n, true
	}
	if errors.Is(err, strconv.ErrRange) {
		p.errorf(field, "number %s is out of range", truncate(text))
		return 0, false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		p.errorf(field, "number %s is out of range", truncate(text))
		return 0, false
	}
	if f != math.Trunc(f) {
		p.errorf(field, "must be a whole number, not %s", truncate(text))
		return 0, false
	}
	return int64(f), true
}

// stringMap decodes raw as an object whose values are strings. An empty
// object gives nil.
func (p *parser) stringMap(field string, raw json.RawMessage) map[string]string {
	members, ok := p.object(field, raw)
	if !ok {
		return nil
	}
	var out map[string]string
	for _, m := range members {
		f := fieldName(field, m.key)
		s, ok := p.str(f, m.val)
		if !ok {
			continue
		}
		if m.key == "" {
			p.errorf(f, "key must not be empty")
			continue
		}
		if out == nil {
			out = make(map[string]string, len(members))
		}
		out[m.key] = s
	}
	return out
}

// fieldName returns the JSON path of key inside parent. Keys that are not
// plain words are quoted, so that hostile keys print safely.
func fieldName(parent, key string) string {
	if !plainKey(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func plainKey(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// quote quotes a value from the file for an error message, shortened so
// one bad value cannot flood the output.
func quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + "…"
	}
	return strconv.Quote(s)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func article(kind string) string {
	switch kind {
	case "object", "array":
		return "an " + kind
	case "null", "nothing":
		return kind
	}
	return "a " + kind
}
