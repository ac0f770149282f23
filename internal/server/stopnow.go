package server

import "context"

// StopNow ends a drain under way at once: running invocations are
// stopped instead of awaited and open connections are closed, so that
// Serve returns promptly. It is what a second interrupt during shutdown
// asks for. Call it only after Serve has begun shutting down.
func (s *Server) StopNow() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.exec.Shutdown(ctx)
	s.http.Close()
}
