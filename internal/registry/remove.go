package registry

// Remove forgets the deployments of agents deleted from the store (with
// their project), so that Get no longer returns them, and returns the
// ones that were loaded (their sandbox pools are the caller's to evict).
// A Get that read the store before the delete does not keep what it read.
// The unpacked code stays on disk: runs in progress may still use it.
//
// Only this process forgets: another one sharing the store keeps the
// agents it has loaded until it calls Remove too (its API does when it
// finds an agent's project deleted, or, with Shared, the agent).
func (r *Registry) Remove(agentIDs ...string) []*Deployment {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	var out []*Deployment
	for _, id := range agentIDs {
		if d := r.current[id]; d != nil {
			out = append(out, d)
			delete(r.current, id)
		}
	}
	return out
}
