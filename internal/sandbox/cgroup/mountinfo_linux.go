package cgroup

import (
	"strings"

	"github.com/moby/sys/mountinfo"
)

// parseMountInfo returns the cgroup and cgroup2 mounts listed in a
// /proc/<pid>/mountinfo text.
func parseMountInfo(text string) []mount {
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(text), func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil
	}
	ms := make([]mount, 0, len(infos))
	for _, i := range infos {
		m := mount{point: i.Mountpoint, root: i.Root, v2: i.FSType == "cgroup2"}
		if !m.v2 {
			// The super options name the hierarchy's controllers (and a
			// name= for named hierarchies).
			for _, o := range strings.Split(i.VFSOptions, ",") {
				switch o {
				case "rw", "ro", "":
				default:
					if !strings.Contains(o, "=") || strings.HasPrefix(o, "name=") {
						m.controllers = append(m.controllers, o)
					}
				}
			}
		}
		ms = append(ms, m)
	}
	return ms
}
