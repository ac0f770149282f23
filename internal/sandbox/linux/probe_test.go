package linux

import (
	"runtime"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	r := Probe()
	t.Logf("probe:\n%s", r)
	if runtime.GOOS != "linux" {
		if r.Missing(RequiredFeatures...) == nil {
			t.Errorf("Missing = nil off Linux")
		}
		return
	}
	// This machine supports everything the backend needs (the other
	// tests run sandboxes on it).
	if err := r.Missing(RequiredFeatures...); err != nil {
		t.Errorf("Missing(required) = %v", err)
	}
	if f, _ := r.Get(FeatureLandlock); !f.OK {
		t.Errorf("landlock %+v", f)
	}
}

func TestMissing(t *testing.T) {
	r := Report{Features: []Feature{
		{Name: "a", OK: true},
		{Name: "b", Detail: "nope", Fix: "do x"},
	}}
	if err := r.Missing("a"); err != nil {
		t.Errorf("Missing(a) = %v", err)
	}
	err := r.Missing("a", "b", "c")
	if err == nil || !strings.Contains(err.Error(), "b: nope (fix: do x)") || !strings.Contains(err.Error(), "c: not probed") {
		t.Errorf("Missing(a, b, c) = %v", err)
	}
}
