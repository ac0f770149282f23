package python

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	in, err := Resolve(t.Context(), "python3")
	if err != nil {
		t.Fatalf("Resolve(python3): %v", err)
	}
	if !filepath.IsAbs(in.Path) || !atLeast(in.Version, MinVersion) || !filepath.IsAbs(in.Prefix) || !strings.HasPrefix(in.Path, in.Prefix) {
		t.Errorf("Resolve = %+v", in)
	}
	// A wrapper script resolves to the real interpreter behind it.
	wrapper := filepath.Join(t.TempDir(), "py-wrapper")
	os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+in.Path+" \"$@\"\n"), 0o755)
	got, err := Resolve(t.Context(), wrapper)
	if err != nil || got.Path != in.Path {
		t.Errorf("Resolve(wrapper) = %+v, %v; want path %s", got, err, in.Path)
	}
	if _, err := Resolve(t.Context(), "no-such-python-xyz"); err == nil || !strings.Contains(err.Error(), "--python") {
		t.Errorf("Resolve(missing) = %v, want a hint about --python", err)
	}
}

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v, min string
		want   bool
	}{
		{"3.11.7", "3.8", true}, {"3.8.0", "3.8", true}, {"3.7.9", "3.8", false},
		{"4.0", "3.8", true}, {"3", "3.8", false}, {"x.y", "3.8", false},
	} {
		if got := atLeast(tt.v, tt.min); got != tt.want {
			t.Errorf("atLeast(%q, %q) = %v, want %v", tt.v, tt.min, got, tt.want)
		}
	}
}
