package egress

import (
	"bufio"
	"bytes"
	"net/http"
)

// maxRefusal bounds what a RefusalWatch keeps: a refusal is one short
// response (status line, four headers, a body of one line).
const maxRefusal = 2 << 10

// A RefusalWatch is the sandbox side's view of one proxy connection: it
// keeps the last bytes the proxy sent (write them to it, e.g. through an
// io.TeeReader), so that when the connection is over Refusal can tell
// whether it ended with the proxy refusing a request. The proxy closes a
// connection right after a refusal, so a refusal is always the end of the
// stream. The supervisor writes it to the sandbox's stderr, where the
// agent's developer finds it in the invocation's logs.
//
// What it reads came through the proxy, so an upstream answering plain
// HTTP could forge one; it only ends up in the agent's own logs.
type RefusalWatch struct {
	tail []byte
}

// Write keeps the end of p. It never fails.
func (w *RefusalWatch) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > maxRefusal {
		p = p[len(p)-maxRefusal:]
	}
	w.tail = append(w.tail, p...)
	if over := len(w.tail) - maxRefusal; over > 0 {
		w.tail = append(w.tail[:0], w.tail[over:]...)
	}
	return n, nil
}

// Refusal returns a one-line account of the refusal the stream ended
// with ("403 denied; reason=\"host not on the allow-list: example.org:443\""),
// or "" if it did not end with one.
func (w *RefusalWatch) Refusal() string {
	i := bytes.LastIndex(w.tail, []byte("HTTP/1.1 "))
	if i < 0 {
		return ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(w.tail[i:])), nil)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	v := resp.Header.Get(EgressHeader)
	if v == "" || resp.StatusCode < 400 {
		return ""
	}
	return resp.Status[:3] + " " + headerSafe(v)
}
