package core

import "testing"

func TestPythonVersion(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"3.12", "3.12", true},
		{"python3.12", "3.12", true},
		{"py3.12", "3.12", true},
		{"Python 3.12", "3.12", true},
		{" CPython3.9 ", "3.9", true},
		{"3.100", "3.100", true},
		{"python", "", true},
		{"python3", "", true},
		{"py3", "", true},
		{"3", "", true},
		{"", "", false},
		{"py", "", true},
		{"3.12.1", "", false},
		{"2.7", "", false},
		{"python2", "", false},
		{"3.012", "", false},
		{"3.", "", false},
		{".12", "", false},
		{"3.1234", "", false},
		{"python  3.12", "", false},
		{"pypy3.10", "", false},
		{"openclaw-gateway", "", false},
		{"3.12a", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := PythonVersion(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("PythonVersion(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
