package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// MustCompile compiles an input_schema or fails the test.
func MustCompile(tb testing.TB, raw string) *Input {
	tb.Helper()
	in, err := Compile([]byte(raw))
	if err != nil {
		tb.Fatalf("Compile(%.200s): %v", raw, err)
	}
	return in
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"empty", `{}`},
		{"null members", `{"args":null,"kwargs":null}`},
		{"boolean schemas", `{"args":true,"kwargs":false}`},
		{"typical", `{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string","minLength":1,"maxLength":4000}},"additionalProperties":false},"args":{"maxItems":0}}`},
		{"local refs", `{"kwargs":{"$defs":{"msg":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/msg"},"b":{"$ref":"#/properties/a"}}}}`},
		{"anchor", `{"kwargs":{"$defs":{"m":{"$anchor":"msg","type":"string"}},"properties":{"a":{"$ref":"#msg"}}}}`},
		{"own $id", `{"kwargs":{"$id":"https://example.com/s.json","$defs":{"m":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/m"}}}}`},
		{"draft-07", `{"kwargs":{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"n":{"type":"number"}},"properties":{"a":{"$ref":"#/definitions/n"}}}}`},
		{"meta-schema ref", `{"kwargs":{"properties":{"schema":{"$ref":"https://json-schema.org/draft/2020-12/schema"}}}}`},
		{"recursive tree", `{"kwargs":{"$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}}`},
		{"any JSON value", `{"args":{"$defs":{"json":{"anyOf":[{"type":["string","number","boolean","null"]},{"type":"array","items":{"$ref":"#/$defs/json"}},{"type":"object","additionalProperties":{"$ref":"#/$defs/json"}}]}},"items":{"$ref":"#/$defs/json"}}}`},
		{"pydantic optional models", `{"kwargs":{"$defs":{"A":{"type":"object","properties":{"b":{"anyOf":[{"$ref":"#/$defs/B"},{"type":"null"}]}}},"B":{"type":"object","properties":{"a":{"anyOf":[{"$ref":"#/$defs/A"},{"type":"null"}]}}}},"$ref":"#/$defs/A"}}`},
		{"unknown format ignored", `{"kwargs":{"properties":{"a":{"format":"no-such-format"}}}}`},
		{"unused self reference", `{"kwargs":{"$defs":{"loop":{"$ref":"#/$defs/loop"}},"type":"object"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile([]byte(tt.raw)); err != nil {
				t.Errorf("Compile(%s): %v", tt.raw, err)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		field  string
		reason string // substring
	}{
		{"not JSON", `{"kwargs":`, "kwargs", "invalid JSON"},
		{"trailing data", `{} {}`, "", "invalid JSON"},
		{"not an object", `[]`, "", `must be an object with "kwargs" and/or "args"`},
		{"bare schema", `{"type":"object","properties":{}}`, "properties", "unknown field"},
		{"odd unknown key", `{"a b":{}}`, `["a b"]`, "unknown field"},
		{"member a string", `{"args":"array"}`, "args", "must be a JSON Schema (an object or a boolean), not a string"},
		{"member a number", `{"kwargs":1}`, "kwargs", "not a number"},
		{"duplicate member", `{"kwargs":{},"kwargs":{}}`, "kwargs", "duplicate key"},
		{"duplicate key inside", `{"kwargs":{"required":["a"],"required":["b"]}}`, "kwargs.required", "duplicate key"},
		{"too large", `{"kwargs":{"description":"` + strings.Repeat("x", MaxSize) + `"}}`, "", "at most 65536 are allowed"},
		{"too deep", `{"args":{"items":` + strings.Repeat(`{"items":`, MaxDepth) + `{}` + strings.Repeat(`}`, MaxDepth+1) + `}`, truncate("args"+strings.Repeat(".items", MaxDepth-1), maxFieldLen), "nested deeper than 64 levels"},
		{"wrong keyword type", `{"kwargs":{"properties":{"m":{"minLength":"1"}}}}`, "kwargs.properties.m.minLength", "is not a valid JSON Schema: type: want integer, got string"},
		{"unknown type name", `{"kwargs":{"type":"strin"}}`, "kwargs.type", `enum: want one of "array", "boolean"`},
		{"negative maxItems", `{"args":{"maxItems":-1}}`, "args.maxItems", "minimum 0"},
		{"invalid regex", `{"kwargs":{"patternProperties":{"(?=x)":{}}}}`, `kwargs.patternProperties["(?=x)"]`, "propertyNames: format: want a regular expression in Go (RE2) syntax"},
		{"invalid pattern", `{"kwargs":{"properties":{"a":{"pattern":"a{2,1}"}}}}`, "kwargs.properties.a.pattern", "format: want a regular expression"},
		{"missing ref target", `{"kwargs":{"$ref":"#/$defs/nope"}}`, "kwargs", `"#/$defs/nope" not found`},
		{"https ref", `{"kwargs":{"$ref":"https://example.com/s.json"}}`, "kwargs", `"https://example.com/s.json" is outside the schema`},
		{"http ref deep", `{"kwargs":{"properties":{"a":{"items":{"$ref":"http://169.254.169.254/latest"}}}}}`, "kwargs", "nothing is fetched"},
		{"file ref", `{"args":{"$ref":"file:///etc/passwd"}}`, "args", `"file:///etc/passwd" is outside the schema`},
		{"relative ref", `{"args":{"$ref":"defs.json#/x"}}`, "args", `"defs.json" is outside the schema`},
		{"ref to the other member", `{"kwargs":{"$ref":"args.json"}}`, "kwargs", "is outside the schema"},
		{"ref from own $id", `{"kwargs":{"$id":"https://example.com/a/s.json","properties":{"x":{"$ref":"b.json"}}}}`, "kwargs", `"https://example.com/a/b.json" is outside the schema`},
		{"remote $schema", `{"kwargs":{"$schema":"https://example.com/meta"}}`, "kwargs", "is outside the schema"},
		{"self ref", `{"kwargs":{"$ref":"#"}}`, "kwargs", "applies itself to the same value again"},
		{"in-place cycle", `{"kwargs":{"$defs":{"a":{"allOf":[{"$ref":"#/$defs/b"}]},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}}}`, "kwargs", "applies itself to the same value again"},
		{"exponential anyOf", `{"args":{"$defs":{"n":{"anyOf":[{"items":{"$ref":"#/$defs/n"}},{"items":{"$ref":"#/$defs/n"}}]}},"$ref":"#/$defs/n"}}`, "args", "can apply more than 1000 subschemas to one input value"},
		{"exponential allOf of refs", `{"kwargs":{"$defs":{"n":{"type":"object","additionalProperties":{"allOf":[{"$ref":"#/$defs/n"},{"$ref":"#/$defs/n"},{"$ref":"#/$defs/n"}]}}},"$ref":"#/$defs/n"}}`, "kwargs", "can apply more than 1000"},
		{"exponential without recursion", `{"kwargs":{"$defs":` + chain(12) + `,"$ref":"#/$defs/d0"}}`, "kwargs", "can apply more than 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Compile([]byte(tt.raw))
			if err == nil {
				t.Fatalf("Compile(%.200s) = %v, nil; want an error", tt.raw, in)
			}
			se, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("Compile error %v is %T, want *Error", err, err)
			}
			if se.Field != tt.field || !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("Compile(%.200s) error:\n field %q reason %q\nwant field %q, reason containing %q", tt.raw, se.Field, se.Reason, tt.field, tt.reason)
			}
		})
	}
}

// chain returns $defs where d<i> applies d<i+1> twice to the same value:
// 2^n evaluations without any recursion.
func chain(n int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"d%d":{"allOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]},`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `"d%d":{"type":"string"}}`, n)
	return b.String()
}

// TestRefusedSchemaWouldBeSlow: the schema the cost check refuses really
// is exponential, and the recursive schema it accepts stays fast on the
// deepest input the API lets through.
func TestRefusedSchemaWouldBeSlow(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	accepted := MustCompile(t, `{"args":{"$defs":{"json":{"anyOf":[{"type":["string","number","boolean","null"]},{"type":"array","items":{"$ref":"#/$defs/json"}},{"type":"object","additionalProperties":{"$ref":"#/$defs/json"}}]}},"items":{"$ref":"#/$defs/json"}}}`)
	start := time.Now()
	if err := accepted.Validate([]byte(deep(MaxInputDepth)), nil); err != nil {
		t.Errorf("Validate of %d levels: %v", MaxInputDepth, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Validate of %d levels took %v", MaxInputDepth, d)
	}
	if err := accepted.Validate([]byte(deep(MaxInputDepth+1)), nil); err == nil || !strings.Contains(err.Error(), "nested deeper than 64 levels") {
		t.Errorf("Validate of %d levels = %v, want a depth violation", MaxInputDepth+1, err)
	}
}

func TestValidate(t *testing.T) {
	const typical = `{
	  "kwargs": {
	    "type": "object",
	    "required": ["message"],
	    "properties": {
	      "message": {"type": "string", "minLength": 1, "maxLength": 10},
	      "count": {"type": "integer", "minimum": 1, "maximum": 100},
	      "ratio": {"type": "number", "exclusiveMaximum": 1.5, "multipleOf": 0.25},
	      "mode": {"enum": ["fast", "slow"]},
	      "kind": {"const": "v1"},
	      "email": {"type": "string", "format": "email"},
	      "slug": {"type": "string", "pattern": "^[a-z]+$"},
	      "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 3},
	      "nick": {"anyOf": [{"type": "string"}, {"type": "null"}]},
	      "pick": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
	      "nested": {"type": "object", "properties": {"deep": {"type": "object", "required": ["x"]}}}
	    },
	    "additionalProperties": false
	  },
	  "args": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}
	}`
	in := MustCompile(t, typical)
	tests := []struct {
		name         string
		args, kwargs string
		want         []Violation // nil: valid
	}{
		{"valid", `["a", 1]`, `{"message":"hi","count":5,"ratio":0.5,"mode":"fast","kind":"v1","email":"a@b.example","slug":"abc","tags":["x","y"],"nick":null,"pick":-1,"nested":{"deep":{"x":1}}}`, nil},
		{"empty args allowed", ``, `{"message":"hi"}`, nil},
		{"whole number as integer", `[]`, `{"message":"hi","count":5.0}`, nil},
		{"required", `[]`, `{}`, []Violation{{"input_kwargs.message", "required property 'message' missing"}}},
		{"type", `[]`, `{"message":42}`, []Violation{{"input_kwargs.message", "type: want string, got number"}}},
		{"type of kwargs root", `[]`, ``, []Violation{{"input_kwargs.message", "required property 'message' missing"}}},
		{"minLength", `[]`, `{"message":""}`, []Violation{{"input_kwargs.message", "minLength 1 (got 0)"}}},
		{"maxLength counts characters", `[]`, `{"message":"ééééééééééé"}`, []Violation{{"input_kwargs.message", "maxLength 10 (got 11)"}}},
		{"integer", `[]`, `{"message":"a","count":1.5}`, []Violation{{"input_kwargs.count", "type: want integer, got number"}}},
		{"maximum", `[]`, `{"message":"a","count":101}`, []Violation{{"input_kwargs.count", "maximum 100"}}},
		{"minimum", `[]`, `{"message":"a","count":0}`, []Violation{{"input_kwargs.count", "minimum 1"}}},
		{"exclusiveMaximum", `[]`, `{"message":"a","ratio":1.5}`, []Violation{{"input_kwargs.ratio", "exclusiveMaximum 1.5"}}},
		{"multipleOf", `[]`, `{"message":"a","ratio":0.3}`, []Violation{{"input_kwargs.ratio", "multipleOf 0.25"}}},
		{"enum", `[]`, `{"message":"a","mode":"medium"}`, []Violation{{"input_kwargs.mode", `enum: want one of "fast", "slow"`}}},
		{"const", `[]`, `{"message":"a","kind":"v2"}`, []Violation{{"input_kwargs.kind", `const: want "v1"`}}},
		{"format", `[]`, `{"message":"a","email":"not an address"}`, []Violation{{"input_kwargs.email", "format: want email"}}},
		{"pattern", `[]`, `{"message":"a","slug":"ABC"}`, []Violation{{"input_kwargs.slug", "pattern: must match '^[a-z]+$'"}}},
		{"array items", `[]`, `{"message":"a","tags":["x",2]}`, []Violation{{"input_kwargs.tags[1]", "type: want string, got number"}}},
		{"uniqueItems", `[]`, `{"message":"a","tags":["x","x"]}`, []Violation{{"input_kwargs.tags", "uniqueItems: items 0 and 1 are equal"}}},
		{"maxItems", `[]`, `{"message":"a","tags":["a","b","c","d"]}`, []Violation{{"input_kwargs.tags", "maxItems 3 (got 4)"}}},
		{"anyOf of types", `[]`, `{"message":"a","nick":7}`, []Violation{{"input_kwargs.nick", "type: want string or null, got number"}}},
		{"oneOf none", `[]`, `{"message":"a","pick":"x"}`, []Violation{{"input_kwargs.pick", "type: want integer or number, got string"}}},
		{"oneOf two", `[]`, `{"message":"a","pick":3}`, []Violation{{"input_kwargs.pick", "oneOf: matches alternatives 0 and 1; want exactly one"}}},
		{"nested required", `[]`, `{"message":"a","nested":{"deep":{}}}`, []Violation{{"input_kwargs.nested.deep.x", "required property 'x' missing"}}},
		{"additionalProperties", `[]`, `{"message":"a","extra":1}`, []Violation{{"input_kwargs.extra", "property 'extra' not allowed (additionalProperties)"}}},
		{"odd key quoted", `[]`, `{"message":"a","a b\n":1}`, []Violation{{`input_kwargs["a b\n"]`, `property 'a b\n' not allowed (additionalProperties)`}}},
		{"args prefixItems", `[1]`, `{"message":"a"}`, []Violation{{"input_args[0]", "type: want string, got number"}}},
		{"args items false", `["a",1,true]`, `{"message":"a"}`, []Violation{{"input_args[2]", "not allowed (the schema here is false)"}}},
		{"several, sorted", `[2]`, `{"count":"x","zzz":1}`, []Violation{
			{"input_args[0]", "type: want string, got number"},
			{"input_kwargs.count", "type: want integer, got string"},
			{"input_kwargs.message", "required property 'message' missing"},
			{"input_kwargs.zzz", "property 'zzz' not allowed (additionalProperties)"},
		}},
		{"huge exponent", `[]`, `{"message":"a","count":1e999999}`, []Violation{{"input_kwargs.count", "number out of range: exponent beyond ±400"}}},
		{"long number", `[]`, `{"message":"a","count":` + strings.Repeat("9", 101) + `}`, []Violation{{"input_kwargs.count", "number out of range: more than 100 characters"}}},
		{"huge number where no rule looks", `["a", 1]`, `{"message":"a","nested":{"n":1e-999999}}`, []Violation{{"input_kwargs.nested.n", "number out of range: exponent beyond ±400"}}},
		{"not JSON", `[`, `{}`, []Violation{{"input_args", "is not valid JSON"}, {"input_kwargs.message", "required property 'message' missing"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := in.Validate([]byte(tt.args), []byte(tt.kwargs))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate(%s, %s): %v", tt.args, tt.kwargs, err)
				}
				return
			}
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok {
				t.Fatalf("Validate(%s, %s) = %v (%T), want a *ValidationError", tt.args, tt.kwargs, err, err)
			}
			if diff := cmp.Diff(tt.want, ve.Violations); diff != "" {
				t.Errorf("Validate(%s, %s) violations (-want +got):\n%s", tt.args, tt.kwargs, diff)
			}
			if ve.Total != len(tt.want) {
				t.Errorf("Total = %d, want %d", ve.Total, len(tt.want))
			}
		})
	}
}

func TestValidateNoSchemaAcceptsAnything(t *testing.T) {
	in := MustCompile(t, `{}`)
	if err := in.Validate([]byte(`[1e999999, [[[]]]]`), []byte(`not even JSON`)); err != nil {
		t.Errorf("Validate with no schemas: %v", err)
	}
	in = MustCompile(t, `{"kwargs":{"required":["a"]}}`)
	if err := in.Validate([]byte(`not JSON`), []byte(`{"a":1}`)); err != nil {
		t.Errorf("Validate with no args schema looked at args: %v", err)
	}
}

// TestViolationsHideValues: no message quotes the offending value, which
// may be large or secret.
func TestViolationsHideValues(t *testing.T) {
	const secret = "sk-SECRET-value-9f8e7d"
	in := MustCompile(t, `{"kwargs":{"properties":{
		"a":{"type":"integer"},"b":{"enum":["x"]},"c":{"const":"y"},"d":{"pattern":"^z$"},
		"e":{"format":"email"},"f":{"maxLength":3},"g":{"not":{"type":"string"}},"h":{"format":"date-time"},
		"i":{"anyOf":[{"minLength":100},{"pattern":"^q"}]},"j":{"type":"array","contains":{"const":1}},
"l":{"format":"uri"},"m":{"format":"regex"},"n":{"format":"uuid"}},
		"additionalProperties":{"type":"integer"}}}`)
	kwargs := fmt.Sprintf(`{"a":%[1]q,"b":%[1]q,"c":%[1]q,"d":%[1]q,"e":%[1]q,"f":%[1]q,"g":%[1]q,"h":%[1]q,"i":%[1]q,"j":[%[1]q],"l":%[1]q,"m":"(%[1]s","n":%[1]q,"other":%[1]q}`, secret)
	err := in.Validate(nil, []byte(kwargs))
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	if ve.Total != 14 {
		t.Errorf("Total = %d, want 14: %+v", ve.Total, ve.Violations)
	}
	for _, v := range ve.Violations {
		if strings.Contains(v.Rule, "SECRET") || strings.Contains(v.Field, "SECRET") {
			t.Errorf("violation %+v repeats the value", v)
		}
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q repeats the value", err)
	}
}

// TestPropertyNamesLocation: a name that breaks propertyNames is reported
// at the object that holds it, as the member it names, whatever order the
// validator visits siblings in.
func TestPropertyNamesLocation(t *testing.T) {
	in := MustCompile(t, `{"kwargs":{"properties":{"k":{"propertyNames":{"maxLength":2}}},"additionalProperties":{"type":"integer"}}}`)
	tests := []struct {
		name, kwargs string
		want         []Violation
	}{
		{"one object has the name", `{"a":"x","b":{"short":1},"k":{"ok":1,"long":2},"z":"y"}`, []Violation{
			{"input_kwargs.a", "type: want integer, got string"},
			{"input_kwargs.b", "type: want integer, got object"},
			{"input_kwargs.k.long", "propertyNames: maxLength 2 (got 4)"},
			{"input_kwargs.z", "type: want integer, got string"},
		}},
		// Two objects at that depth have the name: the violation names
		// the closest location that is certainly right.
		{"two objects have the name", `{"a":"x","b":{"long":1},"k":{"ok":1,"long":2},"z":"y"}`, []Violation{
			{"input_kwargs", "propertyNames: property name 'long' in a member: maxLength 2 (got 4)"},
			{"input_kwargs.a", "type: want integer, got string"},
			{"input_kwargs.b", "type: want integer, got object"},
			{"input_kwargs.z", "type: want integer, got string"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // the validator's map order varies between runs
				err := in.Validate(nil, []byte(tt.kwargs))
				ve, ok := errors.AsType[*ValidationError](err)
				if !ok {
					t.Fatalf("Validate = %v, want a *ValidationError", err)
				}
				if diff := cmp.Diff(tt.want, ve.Violations); diff != "" {
					t.Fatalf("violations (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestValidateCapsViolations(t *testing.T) {
	in := MustCompile(t, `{"args":{"items":{"type":"string"}}}`)
	args := "[" + strings.Repeat("1,", 99) + "1]"
	ve, ok := errors.AsType[*ValidationError](in.Validate([]byte(args), nil))
	if !ok {
		t.Fatal("want a *ValidationError")
	}
	if ve.Total != 100 || len(ve.Violations) != MaxViolations {
		t.Errorf("Total %d, kept %d; want 100, %d", ve.Total, len(ve.Violations), MaxViolations)
	}
	if got, want := ve.Error(), "input_args[0]: type: want string, got number (and 99 more)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLongFieldsShortened(t *testing.T) {
	in := MustCompile(t, `{"kwargs":{"additionalProperties":false}}`)
	key := strings.Repeat("k", 10_000)
	ve, ok := errors.AsType[*ValidationError](in.Validate(nil, []byte(`{"`+key+`":1}`)))
	if !ok {
		t.Fatal("want a *ValidationError")
	}
	v := ve.Violations[0]
	if len(v.Field) > maxFieldLen || len(v.Rule) > 200 || !strings.HasSuffix(v.Field, `…"]`) {
		t.Errorf("violation not shortened: field %d bytes %q, rule %d bytes", len(v.Field), v.Field, len(v.Rule))
	}
}

func TestErrorText(t *testing.T) {
	if got, want := (&Error{Field: "kwargs.type", Reason: "bad"}).Error(), "kwargs.type: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&Error{Reason: "bad"}).Error(), "bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
