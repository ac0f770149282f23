package console

import (
	"io"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// voidElements have no end tag.
var voidElements = []string{"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

// TestPageWellFormed: every element the console's page opens is closed,
// in order, so that each view's section holds only its own content (a
// browser repairs a missing end tag by nesting what follows, which hides
// the next view inside this one).
func TestPageWellFormed(t *testing.T) {
	page, err := embedded.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	z := html.NewTokenizer(strings.NewReader(string(page)))
	var open []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			if len(open) != 0 {
				t.Fatalf("elements never closed: %v", open)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !slices.Contains(voidElements, string(name)) {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes nothing open; innermost open: %v", name, open[max(0, len(open)-3):])
			}
			open = open[:len(open)-1]
		}
	}
}
