package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Relay accepts connections on ln (inside the sandbox: the loopback
// listener that HTTP_PROXY points at) and relays each to a new connection
// to the unix socket at socketPath (the sandbox's egress Listener). Bytes
// are copied both ways; when one side finishes sending, the other side's
// write half is closed; an error either way closes both.
//
// Relay returns when ctx is done (it then closes ln and every relayed
// connection) or when ln fails or is closed, after all its goroutines have
// ended. It returns ctx.Err() when ctx ended it, nil when ln was closed,
// else the accept error.
func Relay(ctx context.Context, ln net.Listener, socketPath string) error {
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool
		wg     sync.WaitGroup
	)
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return false
		}
		for _, c := range cs {
			conns[c] = struct{}{}
		}
		return true
	}
	untrack := func(cs ...net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			delete(conns, c)
		}
	}
	shutdown := func() {
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}

	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			ln.Close()
			shutdown()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		shutdown()
		wg.Wait()
	}()

	var d net.Dialer
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			// Possibly temporary (out of descriptors): back off and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		backoff = 0
		if !track(c) {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer untrack(c)
			defer c.Close()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			u, err := d.DialContext(dctx, "unix", socketPath)
			cancel()
			if err != nil {
				return
			}
			defer u.Close()
			if !track(u) {
				return
			}
			defer untrack(u)
			relayPair(c, u)
		}()
	}
}

// relayPair copies a↔b until both directions end, half-closing as each
// direction finishes; an error either way closes both.
func relayPair(a, b net.Conn) {
	errc := make(chan error, 2)
	cp := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		errc <- err
	}
	go cp(a, b)
	go cp(b, a)
	for range 2 {
		if err := <-errc; err != nil {
			a.Close()
			b.Close()
		}
	}
}
