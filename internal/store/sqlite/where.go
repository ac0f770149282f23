package sqlite

import "strings"

// conditions gathers the WHERE clause of a filtered listing. Only fixed
// fragments are joined into the query; values are always arguments.
type conditions struct {
	clauses []string
	args    []any
}

// equal adds "column = value", unless value is empty: a filter field
// left empty matches everything.
func (c *conditions) equal(column, value string) {
	if value != "" {
		c.add(column+" = ?", value)
	}
}

// in adds "column IN (values…)", unless values is nil: a nil list
// matches everything and an empty one nothing.
func (c *conditions) in(column string, values []string) {
	switch {
	case values == nil:
	case len(values) == 0:
		c.add("1 = 0")
	default:
		args := make([]any, len(values))
		for i, v := range values {
			args[i] = v
		}
		c.add(column+" IN (?"+strings.Repeat(", ?", len(values)-1)+")", args...)
	}
}

// add adds a fixed clause and the arguments of its placeholders.
func (c *conditions) add(clause string, args ...any) {
	c.clauses = append(c.clauses, clause)
	c.args = append(c.args, args...)
}

// where is " WHERE a AND b", or "" with no conditions.
func (c *conditions) where() string {
	if len(c.clauses) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c.clauses, " AND ")
}
