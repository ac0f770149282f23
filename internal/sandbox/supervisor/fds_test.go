package supervisor

import (
	"os"
	"testing"
)

// TestExtraFiles checks each file lands at its descriptor number.
func TestExtraFiles(t *testing.T) {
	// Distinct placeholders: ExtraFiles only places them.
	control, config, sync, exe := new(os.File), new(os.File), new(os.File), new(os.File)
	all := Files{Control: control, Config: config, Sync: sync, Exe: exe}.ExtraFiles()
	if len(all) != 4 {
		t.Fatalf("sandbox mode: %d extra files, want 4", len(all))
	}
	for _, tt := range []struct {
		name string
		fd   int
		want *os.File
	}{
		{"control", ControlFD, control},
		{"config", ConfigFD, config},
		{"sync", SyncFD, sync},
		{"exe", ExeFD, exe},
	} {
		if all[tt.fd-3] != tt.want {
			t.Errorf("sandbox mode: fd %d is not the %s file", tt.fd, tt.name)
		}
	}
	if got := (Files{Control: control}).ExtraFiles(); len(got) != 1 || got[0] != control {
		t.Errorf("plain mode: ExtraFiles() = %v, want only the control channel", got)
	}
	if got, want := ExePath(), "/proc/self/fd/6"; got != want {
		t.Errorf("ExePath() = %q, want %q", got, want)
	}
}
