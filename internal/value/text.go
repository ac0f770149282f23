package value

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextError reports a JSON string that is not valid Unicode text: raw
// bytes that are not UTF-8, or a \u escape of a lone surrogate
// ("\ud800" without its pair), which Go would quietly turn into U+FFFD
// and Python into a str that cannot be encoded.
type TextError struct {
	// Path locates the string: "input_kwargs.message", "input_args[2]";
	// a key's own text is located by its object's path. Empty for the
	// top level.
	Path string
	// Surrogate is true for a lone surrogate escape, false for bytes
	// that are not UTF-8.
	Surrogate bool
	// Key is true when the bad text is an object key, not a value.
	Key bool
}

// Problem describes the fault without quoting the text.
func (e *TextError) Problem() string {
	if e.Surrogate {
		return "a lone surrogate (a \\ud800-\\udfff escape without its pair)"
	}
	return "bytes that are not UTF-8"
}

func (e *TextError) Error() string {
	what := "a string"
	if e.Key {
		what = "a key"
	}
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	return what + where + " is not valid Unicode text: it holds " + e.Problem()
}

// maxPath bounds the path a TextError names.
const maxPath = 200

// CheckText scans the JSON text b and returns a *TextError for the first
// string (key or value) that is not valid Unicode, or nil. It does not
// check that b is valid JSON otherwise; the decoder does. It is fast when
// b is clean: the walk that finds the path runs only when a fault exists.
func CheckText(b []byte) *TextError {
	if utf8.Valid(b) && !mayHoldSurrogate(b) {
		return nil
	}
	return locate(b)
}

// mayHoldSurrogate reports whether b has a \uD8xx-\uDFxx sequence; it may
// be a false alarm (an escaped backslash before it, or a proper pair).
func mayHoldSurrogate(b []byte) bool {
	for i := 0; i+5 < len(b); i++ {
		if b[i] == '\\' && b[i+1] == 'u' && (b[i+2] == 'd' || b[i+2] == 'D') {
			switch b[i+3] {
			case '8', '9', 'a', 'b', 'c', 'd', 'e', 'f', 'A', 'B', 'C', 'D', 'E', 'F':
				return true
			}
		}
	}
	return false
}

// container is one open array or object of the walk in locate.
type container struct {
	object  bool
	key     string // the current key (objects)
	index   int    // the current element (arrays)
	wantKey bool   // the next string is a key (objects)
}

// locate walks b, tracking the path, and checks each string literal.
func locate(b []byte) *TextError {
	var stack []container
	path := func() string {
		var sb strings.Builder
		for _, c := range stack {
			if c.object {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(c.key)
			} else {
				sb.WriteString("[" + strconv.Itoa(c.index) + "]")
			}
			if sb.Len() > maxPath {
				return sb.String()[:maxPath] + "…"
			}
		}
		return sb.String()
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, container{object: true, wantKey: true})
		case '[':
			stack = append(stack, container{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].wantKey = true
				} else {
					stack[n-1].index++
				}
			}
		case '"':
			end, surrogate, bad := scanString(b, i)
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey
			if bad {
				if isKey {
					// The key itself is bad: name its object.
					top := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					p := path()
					stack = append(stack, top)
					return &TextError{Path: p, Surrogate: surrogate, Key: true}
				}
				return &TextError{Path: path(), Surrogate: surrogate}
			}
			if isKey {
				top := &stack[len(stack)-1]
				top.wantKey = false
				var k string
				if json.Unmarshal(b[i:end], &k) != nil {
					k = "?"
				}
				top.key = k
			}
			i = end - 1
		}
	}
	return nil
}

// scanString reads the string literal that opens at b[start] and returns
// the index just past its closing quote (or len(b)), and whether it is
// bad text, and if so whether for a lone surrogate.
func scanString(b []byte, start int) (end int, surrogate, bad bool) {
	i := start + 1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, false, false
		case c == '\\':
			if i+1 < len(b) && b[i+1] == 'u' {
				r, ok := hex4(b, i+2)
				if ok && r >= 0xd800 && r <= 0xdfff {
					if r >= 0xdc00 {
						return skipString(b, i), true, true // a low half first
					}
					// A high half needs a low half right after it.
					lo, ok := rune(0), false
					if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
						lo, ok = hex4(b, i+8)
					}
					if !ok || lo < 0xdc00 || lo > 0xdfff {
						return skipString(b, i), true, true
					}
					i += 12
					continue
				}
				i += 6
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return skipString(b, i), false, true
			}
			i += size
		}
	}
	return len(b), false, false
}

// skipString returns the index past the closing quote of the string
// that i is inside of.
func skipString(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(n), err == nil
}
