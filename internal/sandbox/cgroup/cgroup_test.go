//go:build linux

package cgroup

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"sbx_01-AZ", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"a/b", false},
		{"..", false},
		{"a b", false},
		{"é", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if err := ValidateID(tc.id); (err == nil) != tc.ok {
				t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
		})
	}
}

// hybridMountInfo is this development machine's: v1 controllers plus an
// empty cgroup2 mount at /sys/fs/cgroup/unified.
const hybridMountInfo = `23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/cpu\040x rw,relatime - cgroup cgroup rw,cpu,cpuacct
`

func TestParseMountInfo(t *testing.T) {
	got := parseMountInfo(hybridMountInfo)
	want := []mount{
		{point: "/sys/fs/cgroup/cpu", root: "/", controllers: []string{"cpu"}},
		{point: "/sys/fs/cgroup/cpuacct", root: "/", controllers: []string{"cpuacct"}},
		{point: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}},
		{point: "/sys/fs/cgroup/freezer", root: "/", controllers: []string{"freezer"}},
		{point: "/sys/fs/cgroup/pids", root: "/", controllers: []string{"pids"}},
		{point: "/sys/fs/cgroup/systemd", root: "/", controllers: []string{"xattr", "name=systemd"}},
		{point: "/sys/fs/cgroup/unified", root: "/", v2: true},
		{point: "/sys/fs/cgroup/cpu x", root: "/", controllers: []string{"cpu", "cpuacct"}},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(mount{})); d != "" {
		t.Errorf("parseMountInfo mismatch (-want +got):\n%s", d)
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup("9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/user.slice/u.service\n")
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/x", "cpu": "/a", "cpuacct": "/a", "": "/user.slice/u.service"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parseProcCgroup mismatch (-want +got):\n%s", d)
	}
}

func TestParseKeyed(t *testing.T) {
	got := parseKeyed("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\nbad x\n")
	want := map[string]int64{"low": 0, "high": 0, "max": 12, "oom": 1, "oom_kill": 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parseKeyed mismatch (-want +got):\n%s", d)
	}
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add(hybridMountInfo)
	f.Fuzz(func(t *testing.T, s string) {
		parseMountInfo(s)
		parseProcCgroup(s)
		parseKeyed(s)
	})
}
