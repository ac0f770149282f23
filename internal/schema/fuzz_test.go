package schema

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSchema exercises most keywords, references and combinators.
const fuzzSchema = `{
  "kwargs": {
    "type": "object",
    "required": ["message"],
    "properties": {
      "message": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": "^[^<>]*$"},
      "n": {"type": "integer", "minimum": -5, "exclusiveMaximum": 1e3, "multipleOf": 0.5},
      "mode": {"enum": ["a", 1, null, {"x": [1]}]},
      "when": {"type": "string", "format": "date-time"},
      "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": true, "contains": {"const": "x"}, "maxContains": 2},
      "tree": {"$ref": "#/$defs/node"},
      "either": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["k"]}]},
      "cond": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "number"}}
    },
    "patternProperties": {"^x-": {"type": "boolean"}},
    "propertyNames": {"maxLength": 20},
    "dependentRequired": {"n": ["mode"]},
    "unevaluatedProperties": false,
    "$defs": {
      "tag": {"type": "string", "maxLength": 8},
      "node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}, "v": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    }
  },
  "args": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "items": false, "minItems": 1}
}`

// FuzzValidate: any input, valid JSON or not, against a fixed schema never
// panics and gives nil or violations with a field under input_args or
// input_kwargs; a violation never quotes a long run of the input's text.
func FuzzValidate(f *testing.F) {
	in := MustCompile(f, fuzzSchema)
	for _, seed := range [][2]string{
		{`["a", 1]`, `{"message":"hi"}`},
		{`[]`, `{}`},
		{`[1, "a", 3]`, `{"message":"", "n": 1e999, "tags":["x","x","x"], "tree":{"kids":[{"kids":[{"v":3}]}]}}`},
		{`[[[[[[[[]]]]]]]]`, `{"x-a": 1, "either": {}, "cond": 1, "aaaaaaaaaaaaaaaaaaaaaaaaa": 1}`},
		{`not json`, `{"message":`},
		{`["\u0000\ud800"]`, `{"message":"\u2028<", "when":"2025-13-40T99:00:00Z", "mode":{"x":[1.0]}}`},
		{`[1.5e-400]`, `{"n": 12345678901234567890123456789}`},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, args, kwargs []byte) {
		err := in.Validate(args, kwargs)
		if err == nil {
			return
		}
		ve, ok := errors.AsType[*ValidationError](err)
		if !ok {
			t.Fatalf("Validate(%q, %q) = %v (%T), want a *ValidationError", args, kwargs, err, err)
		}
		if len(ve.Violations) == 0 || len(ve.Violations) > MaxViolations || ve.Total < len(ve.Violations) {
			t.Fatalf("violations %d of %d", len(ve.Violations), ve.Total)
		}
		for _, v := range ve.Violations {
			if !strings.HasPrefix(v.Field, FieldArgs) && !strings.HasPrefix(v.Field, FieldKwargs) {
				t.Fatalf("violation %+v names no input field", v)
			}
			if v.Rule == "" || len(v.Field) > maxFieldLen || !utf8.ValidString(v.Rule) {
				t.Fatalf("bad violation %+v", v)
			}
		}
	})
}

// FuzzCompile: any input_schema document compiles or gives an *Error,
// never panics; a schema that compiles validates a few inputs without
// panicking.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		fuzzSchema,
		`{}`,
		`{"kwargs":true,"args":false}`,
		`{"kwargs":{"$ref":"#"}}`,
		`{"kwargs":{"$ref":"https://example.com/x"}}`,
		`{"kwargs":{"$dynamicAnchor":"m","items":{"$dynamicRef":"#m"}}}`,
		`{"args":{"$schema":"http://json-schema.org/draft-04/schema#","items":[{"type":"string"}],"additionalItems":false,"dependencies":{"a":["b"],"c":{"required":["d"]}}}}`,
		`{"args":{"$schema":"https://json-schema.org/draft/2019-09/schema","$recursiveAnchor":true,"items":{"$recursiveRef":"#"}}}`,
		`{"kwargs":{"$defs":{"n":{"anyOf":[{"items":{"$ref":"#/$defs/n"}},{"items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}}`,
		`{"kwargs":{"pattern":"(?<x)"}}`,
		`{"kwargs":{"properties":{"a":{"$ref":"#/properties/b"},"b":{"$ref":"#/properties/a"}}}}`,
		`{"kwargs":{"contentMediaType":"application/json","contentSchema":{"type":"object"}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := Compile(raw)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("Compile(%q) error %v is %T, want *Error", raw, err, err)
			}
			return
		}
		for _, v := range [][2]string{{`[]`, `{}`}, {`[1,"a",[{}]]`, `{"a":{"b":[null,true]},"c":-0.5}`}, {`[[[[[[]]]]]]`, `{"a":{"a":{"a":{}}}}`}} {
			if err := in.Validate([]byte(v[0]), []byte(v[1])); err != nil {
				if _, ok := errors.AsType[*ValidationError](err); !ok {
					t.Fatalf("Validate with %q: %v (%T)", raw, err, err)
				}
			}
		}
	})
}
