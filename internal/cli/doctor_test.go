package cli

import (
	"strings"
	"testing"
)

func TestFavorDynmods(t *testing.T) {
	for _, tc := range []struct {
		name, mounts string
		ok           bool
		says         string
	}{
		{"no cgroup2", "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n", true, "nothing to tune"},
		{"on", "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,favordynmods 0 0\n", true, "with favordynmods"},
		{"off", "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n", false, "mount -o remount,favordynmods /sys/fs/cgroup/unified"},
		{"an option that only contains the word", "cgroup2 /x cgroup2 rw,nofavordynmodsx 0 0\n", false, "remount,favordynmods /x"},
		{"garbage", "\x00 \n\n short", true, "nothing to tune"},
	} {
		got := favorDynmods(tc.mounts)
		if got.OK != tc.ok || !strings.Contains(got.Detail, tc.says) {
			t.Errorf("%s: %+v, want ok %v saying %q", tc.name, got, tc.ok, tc.says)
		}
	}
}

// FuzzFavorDynmods: any mounts text gives an answer, and a fix only names
// a cgroup2 mount point it was given.
func FuzzFavorDynmods(f *testing.F) {
	f.Add("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
	f.Add("cgroup2 /a cgroup2 favordynmods\ncgroup2 /b cgroup2 rw\n")
	f.Fuzz(func(t *testing.T, mounts string) {
		got := favorDynmods(mounts)
		if !got.OK && !strings.Contains(mounts, "cgroup2") {
			t.Fatalf("advice without a cgroup2 mount: %+v", got)
		}
	})
}
