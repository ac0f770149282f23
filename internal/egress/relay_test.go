package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// unixEcho serves an echo on a unix socket: it copies until the client
// half-closes, then half-closes back.
func unixEcho(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "egr")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "e")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		os.RemoveAll(dir)
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				c.(*net.UnixConn).CloseWrite()
			}()
		}
	}()
	return sock
}

func TestRelay(t *testing.T) {
	sock := unixEcho(t)
	settleGoroutines(t, runtime.NumGoroutine())
	before := runtime.NumGoroutine()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Relay(ctx, ln, sock) }()

	// Round trip with a half-close: the answer arrives after we stop
	// sending, and then EOF.
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "hello relay")
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "hello relay" {
			t.Errorf("round trip: got %q %v, want %q", got, err, "hello relay")
		}
	}

	// An idle connection is closed when ctx ends.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "x")
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(idle, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Relay returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Relay did not return after cancel")
	}
	if _, err := io.ReadAll(idle); err != nil {
		t.Errorf("idle connection after cancel: %v, want EOF", err)
	}
	idle.Close()
	settleGoroutines(t, before)
}

func TestRelayListenerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Relay(context.Background(), ln, "/nonexistent/sock") }()
	// A connection whose socket cannot be reached is closed.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("read: %v, want EOF", err)
	}
	c.Close()
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Relay returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Relay did not return after the listener closed")
	}
}
