package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/value"
)

// Default deadlines, applied to calls whose context has none (PROTOCOL.md:
// the RunAgent SDKs wait 300 s for a run and 600 s for a stream).
const (
	DefaultRunTimeout    = 300 * time.Second
	DefaultStreamTimeout = 600 * time.Second
	// DefaultDeployTimeout covers a deploy that builds an environment
	// (the server's --build-timeout is 10 minutes by default).
	DefaultDeployTimeout = 15 * time.Minute
)

// DefaultBaseURL is where `runagent serve` listens unless told otherwise.
const DefaultBaseURL = "http://127.0.0.1:8450"

const (
	apiPrefix = "/api/v1"
	// timeoutGrace is added to RunRequest.TimeoutSeconds when it sets the
	// default deadline, so the server's own timeout error arrives first.
	timeoutGrace = 30 * time.Second
	// maxResponse bounds a REST response body held in memory.
	maxResponse = 64 << 20
	// maxErrorBody bounds what is read of a failed response.
	maxErrorBody = 1 << 20
)

// Client talks to a runagent (or RunAgent-compatible) server. It is safe
// for concurrent use.
type Client struct {
	base         string // scheme://host[/prefix]/api/v1, no trailing slash
	httpClient   *http.Client
	apiKey       string
	tokenInQuery bool
	userAgent    string
}

// Option configures a [Client].
type Option func(*Client)

// WithAPIKey authenticates every request with key, sent as
// "Authorization: Bearer <key>" on REST calls and on the WebSocket
// handshake. The key never appears in error text.
func WithAPIKey(key string) Option {
	return func(c *Client) { c.apiKey = key }
}

// WithTokenInQuery also puts the API key in the WebSocket URL as
// ?token=<key>, which is how RunAgent's own SDKs authenticate streams.
// Use it only for servers that need it: URLs end up in access logs.
// The Authorization header is still sent.
func WithTokenInQuery() Option {
	return func(c *Client) { c.tokenInQuery = true }
}

// WithHTTPClient sets the HTTP client for all requests, including the
// WebSocket handshake. Its Timeout, if set, bounds whole streams too;
// prefer leaving it zero and passing contexts with deadlines.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client for the server at baseURL, such as
// "http://127.0.0.1:8450". The client appends /api/v1; a baseURL that
// already ends in /api/v1 is accepted too, and a path prefix (a server
// behind a reverse proxy at /runagent) is kept.
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, httpClient: &http.Client{}, userAgent: "runagent-go-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// FromEnv returns a client for $RUNAGENT_BASE_URL (default
// [DefaultBaseURL]) that authenticates with $RUNAGENT_API_KEY when it is
// set. opts are applied after, so they override the environment.
func FromEnv(opts ...Option) (*Client, error) {
	base := os.Getenv("RUNAGENT_BASE_URL")
	if base == "" {
		base = DefaultBaseURL
	}
	var all []Option
	if key := os.Getenv("RUNAGENT_API_KEY"); key != "" {
		all = append(all, WithAPIKey(key))
	}
	return New(base, append(all, opts...)...)
}

// parseBase validates baseURL and returns it with /api/v1 appended. Its
// errors do not quote the URL, which might hold a credential.
func parseBase(baseURL string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("invalid base URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("invalid base URL: the scheme must be http or https")
	case u.Host == "":
		return "", errors.New("invalid base URL: no host")
	case u.User != nil:
		return "", errors.New("invalid base URL: credentials in the URL are not supported; use WithAPIKey")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("invalid base URL: it must not have a query or fragment")
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	path = strings.TrimSuffix(path, apiPrefix)
	return u.Scheme + "://" + u.Host + path + apiPrefix, nil
}

// BaseURL returns the API root the client sends requests to, ending in
// /api/v1.
func (c *Client) BaseURL() string { return c.base }

// endpoint returns the URL of an API path built from segments, each
// escaped as one path segment.
func (c *Client) endpoint(segments ...string) string {
	var b strings.Builder
	b.WriteString(c.base)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// withDefaultTimeout gives ctx a deadline of d unless it has one.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// runTimeout is the default deadline for a run: the SDK default, or the
// requested server-side timeout plus a grace if that is longer.
func runTimeout(def time.Duration, req RunRequest) time.Duration {
	if req.TimeoutSeconds > 0 && req.TimeoutSeconds < 1e6 {
		if d := time.Duration(req.TimeoutSeconds*float64(time.Second)) + timeoutGrace; d > def {
			return d
		}
	}
	return def
}

// setHeaders adds the headers every request carries.
func (c *Client) setHeaders(h http.Header) {
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	if c.apiKey != "" {
		h.Set("Authorization", "Bearer "+c.apiKey)
	}
}

// response is a REST response read into memory.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send performs one REST request and reads the whole response.
func (c *Client) send(ctx context.Context, method, u string, body io.Reader, contentType string) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	c.setHeaders(req.Header)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := int64(maxResponse)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		limit = maxErrorBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		if limit == maxErrorBody {
			b = b[:limit] // enough to describe the failure
		} else {
			return nil, fmt.Errorf("response is larger than %d MiB", limit>>20)
		}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// call performs a request on a route that answers with the envelope and
// unmarshals its data into out (unless out is nil).
func (c *Client) call(ctx context.Context, op, method, u string, body io.Reader, contentType string, out any) (*envelope, error) {
	ctx, cancel := withDefaultTimeout(ctx, DefaultRunTimeout)
	defer cancel()
	resp, err := c.send(ctx, method, u, body, contentType)
	if err != nil {
		return nil, c.fail(op, err)
	}
	env, err := decodeEnvelope(resp.status, resp.header, resp.body)
	if err != nil {
		return nil, c.fail(op, err)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return nil, c.fail(op, fmt.Errorf("decode response data: %w", err))
		}
	}
	return env, nil
}

// fail prepares an error for the caller: server errors are returned as
// they are (their text is the server's), others are prefixed with the
// operation; either way the API key is redacted.
func (c *Client) fail(op string, err error) error {
	if _, ok := err.(*Error); !ok {
		err = fmt.Errorf("%s: %w", op, err)
	}
	return redact(err, c.apiKey)
}

// Run calls a plain (non-streaming) entrypoint and waits for its result.
// Without a deadline on ctx it waits [DefaultRunTimeout], or longer when
// req.TimeoutSeconds asks the server for more. A failure reported by the
// server is an [*Error]; an exception in the agent has code AGENT_ERROR.
func (c *Client) Run(ctx context.Context, agentID string, req RunRequest) (*Result, error) {
	op := "run agent " + strconv.Quote(agentID)
	if err := checkRun(agentID, req); err != nil {
		return nil, c.fail(op, err)
	}
	body, err := json.Marshal(req.wire(""))
	if err != nil {
		return nil, c.fail(op, fmt.Errorf("encode request: %w", err))
	}
	ctx, cancel := withDefaultTimeout(ctx, runTimeout(DefaultRunTimeout, req))
	defer cancel()
	env, err := c.call(ctx, op, http.MethodPost, c.endpoint("agents", agentID, "run"), bytes.NewReader(body), "application/json", nil)
	if err != nil {
		return nil, err
	}
	return &Result{Value: decodeValue(env.Data), InvocationID: env.InvocationID, RequestID: env.RequestID}, nil
}

var errEmptyAgentID = errors.New("agent id is empty")

func checkRun(agentID string, req RunRequest) error {
	if agentID == "" {
		return errEmptyAgentID
	}
	if req.Tag == "" {
		return errors.New("entrypoint tag is empty")
	}
	return nil
}

// decodeValue turns a result field into the JSON value it holds: a
// structured string is decoded (falling back to plain JSON text, then to
// the string itself, as RunAgent clients do); a field that is not a
// string at all is taken as the value.
func decodeValue(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return value.DecodeLenient(s)
	}
	return append(json.RawMessage(nil), raw...)
}

// Health asks whether the server is up. A server that answers but is not
// healthy (draining, or its store unreachable) gives both the decoded
// *Health and an [*Error] with its HTTP status.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	const op = "health"
	ctx, cancel := withDefaultTimeout(ctx, DefaultRunTimeout)
	defer cancel()
	resp, err := c.send(ctx, http.MethodGet, c.endpoint("health"), nil, "")
	if err != nil {
		return nil, c.fail(op, err)
	}
	var h Health
	herr := json.Unmarshal(resp.body, &h)
	if resp.status >= 200 && resp.status <= 299 {
		if herr != nil {
			return nil, c.fail(op, fmt.Errorf("decode response (%s): %w", describeBody(resp.header, resp.body), herr))
		}
		return &h, nil
	}
	if herr == nil && h.Status != "" {
		return &h, c.fail(op, &Error{Status: resp.status, Code: CodeUnavailable, Message: "server is " + h.Status, RequestID: resp.header.Get("X-Request-ID")})
	}
	_, err = decodeEnvelope(resp.status, resp.header, resp.body)
	return nil, c.fail(op, err)
}

// Architecture returns an agent's entrypoints.
func (c *Client) Architecture(ctx context.Context, agentID string) (*Architecture, error) {
	op := "architecture of " + strconv.Quote(agentID)
	if agentID == "" {
		return nil, c.fail(op, errEmptyAgentID)
	}
	var a Architecture
	if _, err := c.call(ctx, op, http.MethodGet, c.endpoint("agents", agentID, "architecture"), nil, "", &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Invocations lists an agent's invocations, newest first.
func (c *Client) Invocations(ctx context.Context, agentID string, opts ListOptions) (*InvocationList, error) {
	op := "invocations of " + strconv.Quote(agentID)
	if agentID == "" {
		return nil, c.fail(op, errEmptyAgentID)
	}
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Offset > 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	u := c.endpoint("agents", agentID, "invocations")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var l InvocationList
	if _, err := c.call(ctx, op, http.MethodGet, u, nil, "", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// InvocationStats summarises an agent's invocations.
func (c *Client) InvocationStats(ctx context.Context, agentID string) (*InvocationStats, error) {
	op := "invocation stats of " + strconv.Quote(agentID)
	if agentID == "" {
		return nil, c.fail(op, errEmptyAgentID)
	}
	var s InvocationStats
	if _, err := c.call(ctx, op, http.MethodGet, c.endpoint("agents", agentID, "invocations", "stats"), nil, "", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Invocation returns one invocation by id.
func (c *Client) Invocation(ctx context.Context, invocationID string) (*Invocation, error) {
	op := "invocation " + strconv.Quote(invocationID)
	if invocationID == "" {
		return nil, c.fail(op, errors.New("invocation id is empty"))
	}
	var inv Invocation
	if _, err := c.call(ctx, op, http.MethodGet, c.endpoint("invocations", invocationID), nil, "", &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Agents lists the deployed agents.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var data struct {
		Agents []Agent `json:"agents"`
	}
	if _, err := c.call(ctx, "list agents", http.MethodGet, c.endpoint("agents"), nil, "", &data); err != nil {
		return nil, err
	}
	if data.Agents == nil {
		data.Agents = []Agent{}
	}
	return data.Agents, nil
}

// Deploy uploads a packaged agent project (the gzip-compressed tar that
// `runagent deploy` builds) and makes it the agent's current version.
// Deploying the same package twice is a no-op with Created false.
func (c *Client) Deploy(ctx context.Context, pkg io.Reader) (*DeployResult, error) {
	if pkg == nil {
		return nil, c.fail("deploy", errors.New("no package"))
	}
	// A deploy may build an environment: minutes, not a run's seconds.
	ctx, cancel := withDefaultTimeout(ctx, DefaultDeployTimeout)
	defer cancel()
	var d DeployResult
	if _, err := c.call(ctx, "deploy", http.MethodPost, c.endpoint("agents"), pkg, "application/gzip", &d); err != nil {
		return nil, err
	}
	return &d, nil
}
