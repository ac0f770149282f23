package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Limits on an input_schema.
const (
	// MaxSize is the largest input_schema accepted, in bytes of JSON.
	MaxSize = 64 << 10
	// MaxDepth is the deepest nesting of JSON arrays and objects in an
	// input_schema document.
	MaxDepth = 64
	// MaxInputDepth is the deepest nesting of arrays and objects inside
	// input_args or input_kwargs that Validate accepts (input_args itself
	// is level 1).
	MaxInputDepth = 64
	// MaxEvaluations bounds how many subschemas may apply to one value of
	// an input (see Compile).
	MaxEvaluations = 1000
)

// Members of an input_schema document.
const (
	memberArgs   = "args"
	memberKwargs = "kwargs"
)

// Error is a problem with an input_schema. Field is the JSON path of the
// offending part relative to the input_schema ("kwargs",
// "kwargs.properties.message.minLength"; empty for the whole document).
type Error struct {
	Field  string
	Reason string
}

// newError returns an *Error, shortening a long field path.
func newError(field, reason string) *Error {
	return &Error{Field: truncate(field, maxFieldLen), Reason: reason}
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Input is a compiled input_schema. A nil schema accepts anything. An
// Input is immutable and safe for concurrent use.
type Input struct {
	args, kwargs *jsonschema.Schema
}

// Compile parses raw, an input_schema document, and compiles both of its
// schemas. Any problem is an *Error. Besides compiling under the JSON
// Schema rules it refuses references that would load anything from
// outside the document and schemas that could make one value's check
// exponentially expensive (see the package documentation).
func Compile(raw []byte) (*Input, error) {
	if len(raw) > MaxSize {
		return nil, &Error{Reason: fmt.Sprintf("is %d bytes; at most %d are allowed", len(raw), MaxSize)}
	}
	if err := checkDocument(raw); err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &Error{Reason: "invalid JSON: " + err.Error()}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, &Error{Reason: fmt.Sprintf(`must be an object with "kwargs" and/or "args", each a JSON Schema; not %s`, article(jsonKind(doc)))}
	}
	in := &Input{}
	for _, key := range sortedKeys(obj) {
		v := obj[key]
		if v == nil {
			continue // null means absent
		}
		var dst **jsonschema.Schema
		switch key {
		case memberArgs:
			dst = &in.args
		case memberKwargs:
			dst = &in.kwargs
		default:
			return nil, &Error{Field: pathKey("", key), Reason: `unknown field; input_schema holds "kwargs" (a JSON Schema for input_kwargs) and "args" (a JSON Schema for input_args)`}
		}
		switch v.(type) {
		case map[string]any, bool:
		default:
			return nil, &Error{Field: key, Reason: fmt.Sprintf("must be a JSON Schema (an object or a boolean), not %s", article(jsonKind(v)))}
		}
		sch, err := compileOne(key, v)
		if err != nil {
			return nil, err
		}
		if err := checkCost(sch); err != nil {
			return nil, &Error{Field: key, Reason: err.Error()}
		}
		*dst = sch
	}
	return in, nil
}

// baseDir is where schemas are compiled: a hierarchical URL, so that a
// relative reference ("other.json") resolves to a URL the loader refuses
// by name, under a reserved domain that never resolves.
const baseDir = "https://runagent.invalid/input_schema/"

// baseURL is the URL a schema is compiled under; it names the member so
// that library messages can be mapped back to a field.
func baseURL(member string) string { return baseDir + member + ".json" }

func compileOne(member string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	url := baseURL(member)
	if err := c.AddResource(url, doc); err != nil {
		return nil, &Error{Field: member, Reason: "cannot be compiled: " + err.Error()}
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, compileError(member, doc, err)
	}
	return sch, nil
}

// errRefused is what refuseLoader answers for every URL.
var errRefused = errors.New("refused")

// refuseLoader loads nothing: a schema may refer only to itself and to
// the built-in meta-schemas, which the compiler resolves without a loader.
type refuseLoader struct{}

func (refuseLoader) Load(string) (any, error) { return nil, errRefused }

// compileError turns a compiler error into an *Error naming the member
// and, where the library says, the place inside it.
func compileError(member string, doc any, err error) *Error {
	if se, ok := errors.AsType[*jsonschema.SchemaValidationError](err); ok {
		if ve, ok := errors.AsType[*jsonschema.ValidationError](se.Err); ok {
			vs := violations(ve, doc, member)
			if len(vs) > 0 {
				return &Error{Field: vs[0].Field, Reason: "is not a valid JSON Schema: " + vs[0].Rule}
			}
		}
		return &Error{Field: member, Reason: "is not a valid JSON Schema"}
	}
	if le, ok := errors.AsType[*jsonschema.LoadURLError](err); ok {
		return &Error{Field: member, Reason: fmt.Sprintf("%s is outside the schema: $ref and $schema may point only inside input_schema (such as \"#/$defs/name\") or to a standard JSON Schema meta-schema; nothing is fetched", quote(tidyURL(member, le.URL)))}
	}
	if re, ok := errors.AsType[*jsonschema.InvalidRegexError](err); ok {
		return &Error{Field: pointerField(member, re.URL), Reason: fmt.Sprintf("invalid regular expression %s: %v", quote(re.Regex), re.Err)}
	}
	return &Error{Field: member, Reason: "cannot be compiled: " + tidyURL(member, err.Error())}
}

// tidyURL removes the internal base URL from a library message.
func tidyURL(member, s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, baseURL(member), ""), baseDir, "")
}

// pointerField turns "<base>#/properties/a" into "<member>.properties.a".
func pointerField(member, url string) string {
	base, ptr, _ := strings.Cut(url, "#")
	field := member
	if base != baseURL(member) || ptr == "" {
		return field
	}
	for _, tok := range strings.Split(ptr, "/")[1:] {
		field = pathKey(field, strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~"))
	}
	return field
}

// checkDocument scans raw for nesting deeper than MaxDepth, duplicate
// object keys and invalid JSON, without building values.
func checkDocument(raw []byte) error {
	type frame struct {
		obj  bool
		keys map[string]bool
		path string
		next int // array index, or -1 when the next token in an object is a key
		key  string
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []*frame
	// child returns the path of the value about to be read.
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.obj {
			return pathKey(f.path, f.key)
		}
		return f.path + "[" + strconv.Itoa(f.next) + "]"
	}
	// consumed advances the enclosing frame past one value.
	consumed := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.obj {
			f.next = -1
		} else {
			f.next++
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) == 0 {
			break
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return newError(child(), "invalid JSON: "+err.Error())
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.obj && f.next == -1 {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					consumed()
					continue
				}
				key := tok.(string) // the decoder allows only strings here
				if f.keys[key] {
					return newError(pathKey(f.path, key), "duplicate key")
				}
				f.keys[key] = true
				f.key, f.next = key, 0
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= MaxDepth {
				return newError(child(), fmt.Sprintf("is nested deeper than %d levels", MaxDepth))
			}
			f := &frame{path: child()}
			if tok == json.Delim('{') {
				f.obj, f.keys, f.next = true, map[string]bool{}, -1
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			consumed()
		default:
			consumed()
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "value"
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "null":
		return "null"
	}
	return "a " + kind
}
