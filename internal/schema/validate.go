package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Input locations named in violations.
const (
	FieldArgs   = "input_args"
	FieldKwargs = "input_kwargs"
)

// MaxViolations is how many violations a ValidationError keeps.
const MaxViolations = 20

// Limits on number literals in an input (see the package documentation).
const (
	maxNumberLen   = 100
	maxNumberExp   = 400
	maxKeyInField  = 64  // bytes of one object key quoted in a field
	maxFieldLen    = 256 // bytes of a whole field
	maxRuleListLen = 160 // bytes of listed enum values or alternatives
)

// Violation is one way an input breaks its schema: where, and which rule.
// Neither names the offending value.
type Violation struct {
	// Field is the location in the request: input_kwargs.message,
	// input_args[0], input_kwargs["odd key"].
	Field string `json:"field"`
	// Rule is the rule broken: "minLength 1 (got 0)", "required property
	// 'message' missing", "type: want string, got number".
	Rule string `json:"rule"`
}

// ValidationError is returned by Validate for input that breaks its
// schema. Violations are sorted by field and hold at most MaxViolations;
// Total counts them all.
type ValidationError struct {
	Violations []Violation
	Total      int
}

func (e *ValidationError) Error() string {
	if len(e.Violations) == 0 {
		return "input does not match its schema"
	}
	v := e.Violations[0]
	s := v.Field + ": " + v.Rule
	if e.Total > 1 {
		s += fmt.Sprintf(" (and %d more)", e.Total-1)
	}
	return s
}

// Validate checks args (the JSON of input_args) and kwargs (of
// input_kwargs) against the schema. It returns nil, a *ValidationError,
// or another error for a failure of the validator itself. Empty args or
// kwargs stand for [] and {}. The input is not changed.
func (in *Input) Validate(args, kwargs []byte) error {
	var vs []Violation
	for _, part := range []struct {
		sch   *jsonschema.Schema
		raw   []byte
		field string
		empty string
	}{
		{in.args, args, FieldArgs, "[]"},
		{in.kwargs, kwargs, FieldKwargs, "{}"},
	} {
		if part.sch == nil {
			continue
		}
		raw := part.raw
		if len(bytes.TrimSpace(raw)) == 0 {
			raw = []byte(part.empty)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			vs = append(vs, Violation{Field: part.field, Rule: "is not valid JSON"})
			continue
		}
		if g := guard(v, part.field); len(g) > 0 {
			vs = append(vs, g...)
			continue
		}
		err = part.sch.Validate(v)
		if err == nil {
			continue
		}
		ve, ok := errors.AsType[*jsonschema.ValidationError](err)
		if !ok {
			return fmt.Errorf("validate %s: %w", part.field, err)
		}
		vs = append(vs, violations(ve, v, part.field)...)
	}
	if len(vs) == 0 {
		return nil
	}
	slices.SortFunc(vs, compareViolations)
	vs = slices.Compact(vs)
	total := len(vs)
	return &ValidationError{Violations: slices.Clip(vs[:min(total, MaxViolations)]), Total: total}
}

// guard finds what Validate refuses before the schema is applied: values
// nested deeper than MaxInputDepth and number literals that exact
// arithmetic would be slow on.
func guard(root any, base string) []Violation {
	var out []Violation
	var loc []string
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		switch v := v.(type) {
		case json.Number:
			if rule := checkNumber(string(v)); rule != "" {
				out = append(out, Violation{Field: locate(root, base, loc), Rule: rule})
			}
		case []any:
			if depth > MaxInputDepth {
				out = append(out, Violation{Field: locate(root, base, loc), Rule: fmt.Sprintf("is nested deeper than %d levels", MaxInputDepth)})
				return
			}
			for i, c := range v {
				loc = append(loc, strconv.Itoa(i))
				walk(c, depth+1)
				loc = loc[:len(loc)-1]
			}
		case map[string]any:
			if depth > MaxInputDepth {
				out = append(out, Violation{Field: locate(root, base, loc), Rule: fmt.Sprintf("is nested deeper than %d levels", MaxInputDepth)})
				return
			}
			for k, c := range v {
				loc = append(loc, k)
				walk(c, depth+1)
				loc = loc[:len(loc)-1]
			}
		}
	}
	walk(root, 1)
	return out
}

// checkNumber returns why a number literal is refused, or "".
func checkNumber(s string) string {
	if len(s) > maxNumberLen {
		return fmt.Sprintf("number out of range: more than %d characters", maxNumberLen)
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if e, err := strconv.Atoi(s[i+1:]); err != nil || e > maxNumberExp || e < -maxNumberExp {
			return fmt.Sprintf("number out of range: exponent beyond ±%d", maxNumberExp)
		}
	}
	return ""
}

func compareViolations(a, b Violation) int {
	return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Rule, b.Rule))
}

// leaf is one violation with the kind of error it came from.
type leaf struct {
	Violation
	kind jsonschema.ErrorKind
}

// violations flattens a validation error tree into violations. root is
// the value that was validated (the input, or the schema document when
// the error comes from meta-schema validation) and base its field name.
func violations(ve *jsonschema.ValidationError, root any, base string) []Violation {
	budget := maxNameSearches
	c := collector{root: root, base: base, budget: &budget}
	c.walk(ve)
	out := make([]Violation, len(c.out))
	for i, l := range c.out {
		out[i] = l.Violation
	}
	slices.SortFunc(out, compareViolations)
	return out
}

type collector struct {
	root   any
	base   string
	out    []leaf
	budget *int // searches objectWith may still make
}

// maxNameSearches bounds the instance walks objectWith makes per Validate.
const maxNameSearches = 100

// objectWith finds the object holding the property name that failed
// propertyNames. The validator (v6.0.3) reports such an error with a
// location slice that it goes on to overwrite while it validates later
// siblings, so only its length can be trusted: the object is looked up
// among those at that depth that have the name. It returns the object's
// location and true if there is one such object, or else the longest
// location common to all of them and false.
func (c *collector) objectWith(depth int, name string) ([]string, bool) {
	if c.budget == nil || *c.budget <= 0 {
		return nil, false
	}
	*c.budget--
	var common, path []string
	found := 0
	var walk func(v any)
	walk = func(v any) {
		if len(path) == depth {
			if m, ok := v.(map[string]any); ok {
				if _, ok := m[name]; ok {
					if found == 0 {
						common = slices.Clone(path)
					}
					for i := range common {
						if path[i] != common[i] {
							common = common[:i]
							break
						}
					}
					found++
				}
			}
			return
		}
		switch v := v.(type) {
		case []any:
			for i, child := range v {
				path = append(path, strconv.Itoa(i))
				walk(child)
				path = path[:len(path)-1]
			}
		case map[string]any:
			for key, child := range v {
				path = append(path, key)
				walk(child)
				path = path[:len(path)-1]
			}
		}
	}
	walk(c.root)
	return common, found == 1
}

func (c *collector) add(loc []string, extra string, rule string, k jsonschema.ErrorKind) {
	field := locate(c.root, c.base, loc)
	if extra != "" {
		field = pathKey(field, extra)
	}
	if len(field) > maxFieldLen {
		field = truncate(field, maxFieldLen)
	}
	c.out = append(c.out, leaf{Violation{Field: field, Rule: rule}, k})
}

func (c *collector) walk(e *jsonschema.ValidationError) {
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		c.add(loc, "", c.alternatives("anyOf", e), k)
		return
	case *kind.OneOf:
		if k.Subschemas == nil {
			c.add(loc, "", c.alternatives("oneOf", e), k)
		} else {
			c.add(loc, "", fmt.Sprintf("oneOf: matches alternatives %d and %d; want exactly one", k.Subschemas[0], k.Subschemas[1]), k)
		}
		return
	case *kind.Required:
		for _, m := range k.Missing {
			c.add(loc, m, "required property "+quoteName(m)+" missing", k)
		}
		return
	case *kind.DependentRequired:
		for _, m := range k.Missing {
			c.add(loc, m, fmt.Sprintf("required property %s missing (dependentRequired: %s is present)", quoteName(m), quoteName(k.Prop)), k)
		}
		return
	case *kind.Dependency:
		for _, m := range k.Missing {
			c.add(loc, m, fmt.Sprintf("required property %s missing (dependencies: %s is present)", quoteName(m), quoteName(k.Prop)), k)
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			c.add(loc, p, "property "+quoteName(p)+" not allowed (additionalProperties)", k)
		}
		return
	case *kind.PropertyNames:
		// The rule broken by the name, not by a value: the causes were
		// found validating the name itself.
		sub := collector{root: k.Property, budget: c.budget}
		for _, cause := range e.Causes {
			sub.walk(cause)
		}
		r := "name not allowed"
		if len(sub.out) > 0 {
			r = sub.out[0].Rule
		}
		if obj, ok := c.objectWith(len(loc), k.Property); ok {
			c.add(obj, k.Property, "propertyNames: "+r, k)
		} else {
			c.add(obj, "", fmt.Sprintf("propertyNames: property name %s in a member: %s", quoteName(k.Property), r), k)
		}
		return
	case *kind.Contains, *kind.Not, *kind.ContentSchema:
		c.add(loc, "", rule(k), k)
		return
	}
	if len(e.Causes) == 0 {
		c.add(loc, "", rule(e.ErrorKind), e.ErrorKind)
		return
	}
	for _, cause := range e.Causes {
		c.walk(cause)
	}
}

// alternatives describes an anyOf or oneOf that no branch matched. When
// every branch fails with one rule at the same place it lists them
// ("type: want string or null, got number"); otherwise it says how many
// alternatives there were.
func (c *collector) alternatives(name string, e *jsonschema.ValidationError) string {
	generic := fmt.Sprintf("%s: matches none of the %d alternatives", name, len(e.Causes))
	here := locate(c.root, c.base, e.InstanceLocation)
	var rules, want []string
	got, allTypes := "", true
	for _, cause := range e.Causes {
		sub := collector{root: c.root, base: c.base, budget: c.budget}
		sub.walk(cause)
		if len(sub.out) != 1 || sub.out[0].Field != here {
			return generic
		}
		rules = append(rules, sub.out[0].Rule)
		if t, ok := sub.out[0].kind.(*kind.Type); ok {
			got = t.Got
			for _, w := range t.Want {
				if !slices.Contains(want, w) {
					want = append(want, w)
				}
			}
		} else {
			allTypes = false
		}
	}
	if len(rules) == 0 {
		return generic
	}
	if allTypes {
		return typeRule(want, got)
	}
	s := name + ": " + strings.Join(rules, "; or ")
	if len(s) > maxRuleListLen+len(name)+2 {
		return generic
	}
	return s
}

func typeRule(want []string, got string) string {
	return fmt.Sprintf("type: want %s, got %s", strings.Join(want, " or "), got)
}

// rule names the rule an error kind reports, without the input value.
func rule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return typeRule(k.Want, k.Got)
	case *kind.Enum:
		if list := listValues(k.Want); list != "" {
			return "enum: want one of " + list
		}
		return fmt.Sprintf("enum: not one of the %d allowed values", len(k.Want))
	case *kind.Const:
		if list := listValues([]any{k.Want}); list != "" {
			return "const: want " + list
		}
		return "const: not the required value"
	case *kind.Format:
		if k.Want == "regex" {
			return "format: want a regular expression in Go (RE2) syntax"
		}
		return "format: want " + k.Want
	case *kind.MinProperties:
		return fmt.Sprintf("minProperties %d (got %d)", k.Want, k.Got)
	case *kind.MaxProperties:
		return fmt.Sprintf("maxProperties %d (got %d)", k.Want, k.Got)
	case *kind.MinItems:
		return fmt.Sprintf("minItems %d (got %d)", k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems %d (got %d)", k.Want, k.Got)
	case *kind.AdditionalItems:
		return fmt.Sprintf("additionalItems: at most %d items allowed", k.Count)
	case *kind.MinLength:
		return fmt.Sprintf("minLength %d (got %d)", k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength %d (got %d)", k.Want, k.Got)
	case *kind.Pattern:
		return "pattern: must match " + quoteName(k.Want)
	case *kind.Minimum:
		return "minimum " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf " + ratString(k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("uniqueItems: items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
	case *kind.Contains:
		return "contains: no item matches"
	case *kind.MinContains:
		return fmt.Sprintf("minContains %d (got %d)", k.Want, len(k.Got))
	case *kind.MaxContains:
		return fmt.Sprintf("maxContains %d (got %d)", k.Want, len(k.Got))
	case *kind.PropertyNames:
		return "propertyNames: property name " + quoteName(k.Property) + " not allowed"
	case *kind.Not:
		return "not: must not match the schema"
	case *kind.FalseSchema:
		return "not allowed (the schema here is false)"
	case *kind.InvalidJsonValue:
		return "is not a valid JSON value"
	case *kind.RefCycle:
		return "schema $ref cycle"
	case *kind.ContentSchema, *kind.ContentEncoding, *kind.ContentMediaType:
		return "content: does not match " + strings.Join(k.KeywordPath(), "/")
	}
	if path := k.KeywordPath(); len(path) > 0 {
		return "fails " + strings.Join(path, "/")
	}
	return "does not match the schema"
}

// listValues renders schema values (not input) for a message, or "" if
// they are too long to be useful.
func listValues(vals []any) string {
	parts := make([]string, 0, len(vals))
	n := 0
	for _, v := range vals {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		n += len(b) + 2
		if n > maxRuleListLen {
			return ""
		}
		parts = append(parts, string(b))
	}
	return strings.Join(parts, ", ")
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// locate turns an instance location into a field: base followed by
// [i] for array items and .key (or ["key"]) for object members.
func locate(root any, base string, loc []string) string {
	field, cur := base, root
	for _, seg := range loc {
		switch c := cur.(type) {
		case []any:
			field += "[" + seg + "]"
			cur = nil
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			}
		case map[string]any:
			field = pathKey(field, seg)
			cur = c[seg]
		default:
			field = pathKey(field, seg)
			cur = nil
		}
	}
	return field
}

// pathKey appends an object key to a field path: parent.key for plain
// keys, parent["key"] (quoted and shortened) for others.
func pathKey(parent, key string) string {
	if plainKey(key) {
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(truncate(key, maxKeyInField)) + "]"
}

func plainKey(s string) bool {
	if s == "" || len(s) > maxKeyInField {
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

// quoteName quotes a property name or pattern for a rule: 'name'.
func quoteName(s string) string {
	q := strconv.Quote(truncate(s, maxKeyInField))
	return "'" + strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`) + "'"
}

// truncate shortens s to at most n bytes on a rune boundary, marking the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// quote quotes a string from a schema for a message, shortened.
func quote(s string) string { return strconv.Quote(truncate(s, 200)) }
