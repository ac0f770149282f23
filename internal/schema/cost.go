package schema

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// checkCost refuses a schema that could apply more than MaxEvaluations
// subschemas to one value of an input nested up to MaxInputDepth levels.
//
// The validator evaluates every branch of anyOf, oneOf and allOf, follows
// every $ref, and applies a subschema to every child of a value; a schema
// that branches into itself at every level of the input (two anyOf
// branches that both recurse into "items") therefore takes time
// exponential in the input's depth: 20 levels of "[" take seconds. The
// bound computed here is an over-estimate that follows the validator's
// order of work:
//
//   - a subschema whose "type" excludes objects (arrays) stops there and
//     evaluates nothing on the members (items) of an object (array);
//   - the in-place applicators of a subschema ($ref, allOf, anyOf, oneOf,
//     not, if, then, else, dependentSchemas) all count, on the same value;
//     a $dynamicRef or $recursiveRef counts as the dearest schema it may
//     resolve to;
//   - a member of an object gets, from each subschema applied to the
//     object, the "properties" entry of its name (or else
//     "additionalProperties"), plus every patternProperties entry,
//     propertyNames and unevaluatedProperties; likewise an item of an
//     array gets its "prefixItems" entry (or else "items"), contains and
//     unevaluatedItems. The bound is taken for the dearest member name
//     (item position), over everything applied to the object (array).
//
// A subschema that applies itself to the same value again without
// descending into the input (directly or through other in-place
// applicators) is refused too: the validator would report a cycle for
// every input that reaches it.
func checkCost(root *jsonschema.Schema) error {
	g := newCostGraph(root)
	order, err := g.inPlaceOrder()
	if err != nil {
		return err
	}
	n := len(g.nodes)
	// prev[i] bounds the subschemas evaluated on one value d-1 levels
	// below a value that node i is applied to (d = 0: on that value).
	prev := make([]float64, n)
	for _, i := range order {
		prev[i] = 1
		for _, group := range g.inPlace[i] {
			m := 0.0
			for _, c := range group {
				m = max(m, prev[c])
			}
			prev[i] += m
		}
	}
	if prev[0] > MaxEvaluations {
		return tooCostly(1)
	}
	worst := prev[0]
	work := 0
	obj := make([]*keyed, n)
	arr := make([]*keyed, n)
	for d := 1; d < MaxInputDepth; d++ {
		at := func(c *jsonschema.Schema) float64 {
			if c == nil {
				return 0
			}
			return prev[g.index[c]]
		}
		for _, i := range order {
			s := g.nodes[i]
			obj[i], arr[i] = nil, nil
			if allows(s, "object") {
				own := &keyed{other: at(additionalSchema(s.AdditionalProperties))}
				for name, c := range s.Properties {
					own.set(name, at(c))
				}
				extra := at(s.PropertyNames) + at(s.UnevaluatedProperties)
				for _, c := range s.PatternProperties {
					extra += at(c)
				}
				own.add(extra)
				obj[i] = g.combine(i, own, obj, &work)
			}
			if allows(s, "array") {
				own := &keyed{other: max(at(s.Items2020), at(additionalSchema(s.AdditionalItems)))}
				switch items := s.Items.(type) {
				case *jsonschema.Schema:
					own.other = max(own.other, at(items))
				case []*jsonschema.Schema:
					for pos, c := range items {
						own.set(strconv.Itoa(pos), at(c))
					}
				}
				for pos, c := range s.PrefixItems {
					own.set(strconv.Itoa(pos), at(c))
				}
				own.add(at(s.Contains) + at(s.UnevaluatedItems))
				arr[i] = g.combine(i, own, arr, &work)
			}
		}
		if work > maxCostWork {
			return errors.New("is too complex to check: simplify it or split it into fewer $defs")
		}
		next := make([]float64, n)
		for i := range next {
			next[i] = max(obj[i].max(), arr[i].max())
		}
		worst = max(worst, next[0])
		if worst > MaxEvaluations {
			return tooCostly(d + 1)
		}
		if slices.Equal(next, prev) {
			break // a fixed point: every deeper level costs the same
		}
		prev = next
	}
	return nil
}

func tooCostly(level int) error {
	return fmt.Errorf("can apply more than %d subschemas to one input value at level %d of the input (at most %d are allowed): look for anyOf, oneOf or allOf branches that each lead back to the same schema through $ref", MaxEvaluations, level, MaxEvaluations)
}

// maxCostWork bounds the work checkCost does (member names carried
// between subschemas, summed over levels).
const maxCostWork = 20_000_000

// keyed is a cost per member name (or item position), with other for
// every name not listed. A nil *keyed costs nothing.
type keyed struct {
	other float64
	keys  map[string]float64
}

func (k *keyed) get(name string) float64 {
	if k == nil {
		return 0
	}
	if v, ok := k.keys[name]; ok {
		return v
	}
	return k.other
}

func (k *keyed) set(name string, v float64) {
	if k.keys == nil {
		k.keys = map[string]float64{}
	}
	k.keys[name] = v
}

// add adds v for every name.
func (k *keyed) add(v float64) {
	k.other += v
	for name := range k.keys {
		k.keys[name] += v
	}
}

func (k *keyed) max() float64 {
	if k == nil {
		return 0
	}
	m := k.other
	for _, v := range k.keys {
		m = max(m, v)
	}
	return m
}

// combine adds to own, node i's cost for the children of a value, the
// costs of i's in-place applicators (cur, already computed), name by name.
func (g *costGraph) combine(i int, own *keyed, cur []*keyed, work *int) *keyed {
	for _, group := range g.inPlace[i] {
		for _, c := range group {
			for name := range cur[c].keysOrNil() {
				if _, ok := own.keys[name]; !ok {
					own.set(name, own.other)
				}
			}
		}
	}
	for _, group := range g.inPlace[i] {
		m := 0.0
		for _, c := range group {
			m = max(m, cur[c].rest())
		}
		own.other += m
		for name := range own.keys {
			m := 0.0
			for _, c := range group {
				m = max(m, cur[c].get(name))
			}
			own.keys[name] += m
		}
		*work += (len(own.keys) + 1) * len(group)
	}
	return own
}

// rest is the cost for names not listed.
func (k *keyed) rest() float64 {
	if k == nil {
		return 0
	}
	return k.other
}

func (k *keyed) keysOrNil() map[string]float64 {
	if k == nil {
		return nil
	}
	return k.keys
}

func additionalSchema(v any) *jsonschema.Schema {
	s, _ := v.(*jsonschema.Schema)
	return s
}

// allows reports whether a value of JSON type t gets past s's "type".
func allows(s *jsonschema.Schema, t string) bool {
	if s.Bool != nil {
		return false // true and false schemas look at nothing below
	}
	if s.Types == nil || s.Types.IsEmpty() {
		return true
	}
	return slices.Contains(s.Types.ToStrings(), t)
}

// costGraph numbers the subschemas reachable from a root and records the
// in-place applicators of each, in groups: every group applies, but only
// one member of a group (the target a dynamic reference resolves to).
type costGraph struct {
	nodes   []*jsonschema.Schema
	index   map[*jsonschema.Schema]int
	inPlace [][][]int
}

func newCostGraph(root *jsonschema.Schema) *costGraph {
	g := &costGraph{index: map[*jsonschema.Schema]int{}}
	g.add(root)
	for i := 0; i < len(g.nodes); i++ {
		forEachChild(g.nodes[i], func(c *jsonschema.Schema) { g.add(c) })
	}
	dynamic := map[string][]int{}
	var recursive []int
	for i, s := range g.nodes {
		if s.DynamicAnchor != "" {
			dynamic[s.DynamicAnchor] = append(dynamic[s.DynamicAnchor], i)
		}
		if s.RecursiveAnchor {
			recursive = append(recursive, i)
		}
	}
	g.inPlace = make([][][]int, len(g.nodes))
	for i, s := range g.nodes {
		var out [][]int
		each := func(c *jsonschema.Schema) {
			if c != nil {
				out = append(out, []int{g.index[c]})
			}
		}
		each(s.Ref)
		each(s.Not)
		each(s.If)
		each(s.Then)
		each(s.Else)
		for _, c := range s.AllOf {
			each(c)
		}
		for _, c := range s.AnyOf {
			each(c)
		}
		for _, c := range s.OneOf {
			each(c)
		}
		for _, c := range s.DependentSchemas {
			each(c)
		}
		for _, dep := range s.Dependencies {
			if c, ok := dep.(*jsonschema.Schema); ok {
				each(c)
			}
		}
		// A dynamic reference resolves, at validation time, to its static
		// target or to one schema with the same anchor.
		if r := s.DynamicRef; r != nil {
			var group []int
			if r.Ref != nil {
				group = append(group, g.index[r.Ref])
			}
			if r.Anchor != "" {
				group = append(group, dynamic[r.Anchor]...)
			}
			out = append(out, group)
		}
		if s.RecursiveRef != nil {
			out = append(out, append([]int{g.index[s.RecursiveRef]}, recursive...))
		}
		g.inPlace[i] = out
	}
	return g
}

func (g *costGraph) add(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	if _, ok := g.index[s]; ok {
		return
	}
	g.index[s] = len(g.nodes)
	g.nodes = append(g.nodes, s)
}

// inPlaceOrder returns the nodes with every node after its in-place
// applicators, or an error if they form a cycle.
func (g *costGraph) inPlaceOrder() ([]int, error) {
	const (
		unseen = iota
		active
		done
	)
	state := make([]int, len(g.nodes))
	order := make([]int, 0, len(g.nodes))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case active:
			return fmt.Errorf("%s applies itself to the same value again (through $ref, allOf, anyOf, ...) without descending into the input; validation would never end", locationOf(g.nodes[i]))
		case done:
			return nil
		}
		state[i] = active
		for _, group := range g.inPlace[i] {
			for _, c := range group {
				if err := visit(c); err != nil {
					return err
				}
			}
		}
		state[i] = done
		order = append(order, i)
		return nil
	}
	for i := range g.nodes {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// locationOf names a subschema by its JSON pointer inside input_schema.
func locationOf(s *jsonschema.Schema) string {
	for _, m := range []string{memberArgs, memberKwargs} {
		if strings.HasPrefix(s.Location, baseURL(m)+"#") {
			return "the subschema at " + pointerField(m, s.Location)
		}
	}
	return "a subschema"
}

// forEachChild calls f with every subschema s refers to.
func forEachChild(s *jsonschema.Schema, f func(*jsonschema.Schema)) {
	f(s.Ref)
	f(s.RecursiveRef)
	if s.DynamicRef != nil {
		f(s.DynamicRef.Ref)
	}
	f(s.Not)
	f(s.If)
	f(s.Then)
	f(s.Else)
	for _, list := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
		for _, c := range list {
			f(c)
		}
	}
	for _, c := range s.Properties {
		f(c)
	}
	for _, c := range s.PatternProperties {
		f(c)
	}
	for _, c := range s.DependentSchemas {
		f(c)
	}
	for _, dep := range s.Dependencies {
		if c, ok := dep.(*jsonschema.Schema); ok {
			f(c)
		}
	}
	if c, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		f(c)
	}
	if c, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
		f(c)
	}
	switch items := s.Items.(type) {
	case *jsonschema.Schema:
		f(items)
	case []*jsonschema.Schema:
		for _, c := range items {
			f(c)
		}
	}
	f(s.Items2020)
	f(s.PropertyNames)
	f(s.Contains)
	f(s.UnevaluatedProperties)
	f(s.UnevaluatedItems)
	f(s.ContentSchema)
}
