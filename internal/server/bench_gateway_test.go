package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// gatewayParallelism is how many clients per CPU the gateway benchmarks
// run at once.
const gatewayParallelism = 16

// benchGateway reads one invocation record (GET /api/v1/invocations/{id}:
// store read, decryption, JSON) from many clients at once and reports
// requests per second.
func benchGateway(b *testing.B, s *Server, c *http.Client) {
	get := invocationURL(b, s, c)
	b.SetParallelism(gatewayParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := gatewayRead(c, get); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// invocationURL runs the echo entrypoint once on s and returns the URL
// of its invocation record.
func invocationURL(b *testing.B, s *Server, c *http.Client) string {
	b.Helper()
	url := s.URL() + "/api/v1/agents/" + helloID + "/run"
	resp, err := c.Post(url, "application/json", bytes.NewReader(echoBody))
	if err != nil {
		b.Fatal(err)
	}
	var env struct {
		InvocationID string `json:"invocation_id"`
	}
	json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if env.InvocationID == "" {
		b.Fatalf("run: %d", resp.StatusCode)
	}
	return s.URL() + "/api/v1/invocations/" + env.InvocationID
}

// gatewayRead is one GET of an invocation record, its body read.
func gatewayRead(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET invocation: %d", resp.StatusCode)
	}
	return nil
}

func gatewayClient(token string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	if token == "" {
		return &http.Client{Transport: t}
	}
	return &http.Client{Transport: bearer{key: token, base: t}}
}

// BenchmarkGatewayFull: an API key checked, the rate limit applied, the
// read recorded in the audit trail (durably, before the answer).
func BenchmarkGatewayFull(b *testing.B) {
	token := withOwnerKey(b)
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}})
	benchGateway(b, s, gatewayClient(token))
}

// BenchmarkGatewayBare: the same handler with the middleware removed: no
// authentication, no rate limit, no audit record.
func BenchmarkGatewayBare(b *testing.B) {
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}, Auth: AuthNone, NoRateLimit: true, noAudit: true})
	benchGateway(b, s, gatewayClient(""))
}

// BenchmarkGatewayNoAudit: authentication and the rate limit, without the
// audit record: splits the full gateway's cost.
func BenchmarkGatewayNoAudit(b *testing.B) {
	token := withOwnerKey(b)
	s := serve(b, Config{AgentDirs: []string{"../../examples/hello"}, noAudit: true})
	benchGateway(b, s, gatewayClient(token))
}
