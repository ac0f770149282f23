package api

import (
	"sync"
	"sync/atomic"

	"github.com/runagent/runagent/internal/core"
)

// shedder keeps the server answering under overload: past maxInFlight
// requests at once, new ones get a fast 503 (cheaper than queueing them
// until they time out); past maxStreams open streams from one client
// address, new streams get 429. Connection counts per address are the
// listener's job (connlimit).
type shedder struct {
	maxInFlight int64
	inFlight    atomic.Int64

	maxStreams int
	mu         sync.Mutex
	streams    map[string]int // by client address key
}

var errOverloaded = &core.Error{Code: core.CodeUnavailable, Message: "the server is overloaded; retry in a moment"}

// enter admits a request, or reports that the server is full.
func (s *shedder) enter() bool {
	if s.inFlight.Add(1) > s.maxInFlight {
		s.inFlight.Add(-1)
		return false
	}
	return true
}

func (s *shedder) leave() { s.inFlight.Add(-1) }

// stream admits a stream from the client address ip (a key from
// addrKey); call release when it ends.
func (s *shedder) stream(ip string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams[ip] >= s.maxStreams {
		return nil, core.Errorf(core.CodeRateLimited, "your address has %d streams open, the most allowed; close one first", s.maxStreams)
	}
	s.streams[ip]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if n := s.streams[ip] - 1; n > 0 {
			s.streams[ip] = n
		} else {
			delete(s.streams, ip)
		}
	}, nil
}
