package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// streamChunks is how many chunks one benchmarked stream carries.
const streamChunks = 5000

func streamRequest() client.RunRequest {
	args := make([]any, streamChunks)
	for i := range args {
		args[i] = i
	}
	return client.RunRequest{Tag: "generate_stream", Args: args}
}

// consume reads a whole stream with the Go client, as an SDK would, and
// fails unless every chunk arrived.
func consume(b *testing.B, st *client.Stream, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for st.Next() {
		n++
	}
	if err := st.Err(); err != nil || n != streamChunks {
		b.Fatalf("stream: %d chunks, %v", n, err)
	}
	st.Close()
}

func reportChunks(b *testing.B) {
	chunks := float64(b.N * streamChunks)
	b.ReportMetric(chunks/b.Elapsed().Seconds(), "chunks/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/chunks, "ns/chunk")
}

// BenchmarkStreamSSE: one agent stream of streamChunks chunks through the
// server (Server-Sent Events) to the Go client, in-process guest.
func BenchmarkStreamSSE(b *testing.B) {
	s := startServer(b, sandboxtest.EchoBackend{})
	c, _ := client.New(s.URL())
	req := streamRequest()
	for b.Loop() {
		st, err := c.StreamSSE(b.Context(), helloID, req)
		consume(b, st, err)
	}
	reportChunks(b)
}

// BenchmarkStreamSSENoKeep is BenchmarkStreamSSE on a server that keeps no
// events for resumption (--stream-keep -1s): the baseline of what keeping
// them costs.
func BenchmarkStreamSSENoKeep(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}, Exe: exe, Backend: sandboxtest.EchoBackend{},
		Version: "test", Auth: AuthNone, StreamKeep: -1})
	c, _ := client.New(s.URL())
	req := streamRequest()
	for b.Loop() {
		st, err := c.StreamSSE(b.Context(), helloID, req)
		consume(b, st, err)
	}
	reportChunks(b)
}

// BenchmarkStreamSSEBaseline: the same bytes, event by event with a flush
// each, from a bare net/http handler to the same client: what a stream
// costs without the platform.
func BenchmarkStreamSSEBaseline(b *testing.B) {
	s := startServer(b, sandboxtest.EchoBackend{})
	c, _ := client.New(s.URL())
	// Capture one real stream's bytes.
	var raw bytes.Buffer
	cap := &http.Client{Transport: &captureTransport{w: &raw}}
	cc, _ := client.New(s.URL(), client.WithHTTPClient(cap))
	st, err := cc.StreamSSE(b.Context(), helloID, streamRequest())
	consume(b, st, err)
	events := strings.SplitAfter(raw.String(), "\n\n")
	bare := bareServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, ev := range events {
			io.WriteString(w, ev)
			rc.Flush()
		}
	}))
	c, _ = client.New(bare)
	req := streamRequest()
	b.ResetTimer()
	for b.Loop() {
		st, err := c.StreamSSE(b.Context(), helloID, req)
		consume(b, st, err)
	}
	reportChunks(b)
}

// BenchmarkStreamWebSocket: as BenchmarkStreamSSE, over a WebSocket.
func BenchmarkStreamWebSocket(b *testing.B) {
	s := startServer(b, sandboxtest.EchoBackend{})
	c, _ := client.New(s.URL())
	req := streamRequest()
	for b.Loop() {
		st, err := c.Stream(b.Context(), helloID, req)
		consume(b, st, err)
	}
	reportChunks(b)
}

// BenchmarkStreamWebSocketBaseline: the messages of one real stream sent
// by a bare WebSocket handler to the same client.
func BenchmarkStreamWebSocketBaseline(b *testing.B) {
	s := startServer(b, sandboxtest.EchoBackend{})
	msgs := captureWS(b, strings.Replace(s.URL(), "http", "ws", 1)+"/api/v1/agents/"+helloID+"/run-stream")
	bare := bareServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx := r.Context()
		if _, _, err := conn.Read(ctx); err != nil {
			return
		}
		for _, m := range msgs {
			if err := conn.Write(ctx, websocket.MessageText, m); err != nil {
				return
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}))
	c, _ := client.New(bare)
	req := streamRequest()
	for b.Loop() {
		st, err := c.Stream(b.Context(), helloID, req)
		consume(b, st, err)
	}
	reportChunks(b)
}

// captureWS runs one stream on url and returns every message received.
func captureWS(b *testing.B, url string) [][]byte {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	args := make([]int, streamChunks)
	for i := range args {
		args[i] = i
	}
	start, _ := json.Marshal(map[string]any{"action": "start_stream", "entrypoint_tag": "generate_stream", "input_args": args, "input_kwargs": map[string]any{}})
	if err := conn.Write(ctx, websocket.MessageText, start); err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	for {
		_, m, err := conn.Read(ctx)
		if err != nil {
			break
		}
		msgs = append(msgs, m)
	}
	if len(msgs) < streamChunks {
		b.Fatalf("captured %d messages", len(msgs))
	}
	return msgs
}

// bareServer serves h on loopback until b ends and returns its URL.
func bareServer(b *testing.B, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// captureTransport copies response bodies to w as they are read.
type captureTransport struct{ w io.Writer }

func (t *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{bufio.NewReader(io.TeeReader(resp.Body, t.w)), resp.Body}
	return resp, nil
}
