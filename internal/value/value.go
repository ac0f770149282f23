// Package value converts between JSON values and RunAgent's "structured
// string" encoding (PROTOCOL.md): a JSON string whose content is the JSON
// text of {"type": T, "payload": P}, where P is a string holding the JSON
// encoding of the value and T is one of string, integer, number, boolean,
// array, object, null.
package value

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Types of the structured encoding.
const (
	String  = "string"
	Integer = "integer"
	Number  = "number"
	Boolean = "boolean"
	Array   = "array"
	Object  = "object"
	Null    = "null"
)

// structured is the inner object of a structured string.
type structured struct {
	Type    string `json:"type"`
	Payload string `json:"payload"`
}

// TypeOf returns the structured type of a JSON value. A number token with
// a fraction or exponent is "number", otherwise "integer" (so Python's 1.0
// stays a float). It returns an error for anything that is not one valid
// JSON value, and for numbers that overflow to infinity.
func TypeOf(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if !json.Valid(raw) {
		return "", errors.New("value is not valid JSON")
	}
	switch raw[0] {
	case '"':
		return String, nil
	case '{':
		return Object, nil
	case '[':
		return Array, nil
	case 't', 'f':
		return Boolean, nil
	case 'n':
		return Null, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return "", fmt.Errorf("number %.40s is out of range", raw)
	}
	if bytes.ContainsAny(raw, ".eE") {
		return Number, nil
	}
	return Integer, nil
}

// Encode returns the structured string for a JSON value (the content of
// the string, not yet JSON-quoted for a response field).
func Encode(raw json.RawMessage) (string, error) {
	t, err := TypeOf(raw)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(structured{Type: t, Payload: string(bytes.TrimSpace(raw))})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Decode parses a structured string and returns the JSON value it holds.
// It checks that the payload is valid JSON of the declared type.
func Decode(s string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	var st structured
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("not a structured value: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a structured value: trailing data")
	}
	switch st.Type {
	case String, Integer, Number, Boolean, Array, Object, Null:
	default:
		return nil, fmt.Errorf("structured value has unknown type %q", st.Type)
	}
	raw := json.RawMessage(bytes.TrimSpace([]byte(st.Payload)))
	got, err := TypeOf(raw)
	if err != nil {
		return nil, fmt.Errorf("structured %s payload: %w", st.Type, err)
	}
	// An integer payload is also a valid number ("number" may hold 2).
	if got != st.Type && !(st.Type == Number && got == Integer) {
		return nil, fmt.Errorf("structured value declares %s but holds %s", st.Type, got)
	}
	return raw, nil
}

// DecodeLenient decodes what RunAgent clients receive: the structured form
// first, then plain JSON text, then the raw string itself (as a JSON
// string). It never fails.
func DecodeLenient(s string) json.RawMessage {
	if v, err := Decode(s); err == nil {
		return v
	}
	if b := bytes.TrimSpace([]byte(s)); json.Valid(b) && len(b) > 0 {
		return b
	}
	q, _ := json.Marshal(s)
	return q
}
