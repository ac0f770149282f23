package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Progress is a step of a deploy as the server reports it.
type Progress struct {
	// Step is "unpacked", "environment", "building", "cached", "built",
	// "load_check", "failed" or "done".
	Step    string        `json:"step"`
	Message string        `json:"message"`
	Elapsed time.Duration `json:"-"`
}

// Build is the record of a deploy's making of an agent version ready.
type Build struct {
	ID          string    `json:"build_id"`
	AgentID     string    `json:"agent_id"`
	ProjectID   string    `json:"project_id"`
	Version     string    `json:"version"`
	Environment string    `json:"environment,omitempty"`
	Cached      bool      `json:"cached"`
	Status      string    `json:"status"` // "succeeded" or "failed"
	Error       string    `json:"error,omitempty"`
	Log         string    `json:"log,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
}

// DeployBuild is what a deploy's answer says of its build.
type DeployBuild struct {
	ID          string  `json:"build_id"`
	Status      string  `json:"status"`
	Environment string  `json:"environment"`
	Cached      bool    `json:"cached"`
	Seconds     float64 `json:"seconds"`
}

// DeployProgress is Deploy that reports each step to progress as the
// server takes it (building an environment can take minutes). It waits
// as long as ctx allows: without a deadline, up to DefaultDeployTimeout.
func (c *Client) DeployProgress(ctx context.Context, pkg io.Reader, progress func(Progress)) (*DeployResult, error) {
	if pkg == nil {
		return nil, c.fail("deploy", errors.New("no package"))
	}
	ctx, cancel := withDefaultTimeout(ctx, DefaultDeployTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("agents"), pkg)
	if err != nil {
		return nil, c.fail("deploy", err)
	}
	c.setHeaders(req.Header)
	req.Header.Set("Accept", "application/x-ndjson, application/json;q=0.5")
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, c.fail("deploy", err)
	}
	defer resp.Body.Close()
	if mt := resp.Header.Get("Content-Type"); !bytes.HasPrefix([]byte(mt), []byte("application/x-ndjson")) {
		// Refused before anything started: an ordinary envelope.
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return nil, c.fail("deploy", err)
		}
		env, err := decodeEnvelope(resp.StatusCode, resp.Header, b)
		if err != nil {
			return nil, c.fail("deploy", err)
		}
		var d DeployResult
		if err := json.Unmarshal(env.Data, &d); err != nil {
			return nil, c.fail("deploy", fmt.Errorf("decode response data: %w", err))
		}
		return &d, nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxResponse)
	for sc.Scan() {
		var line struct {
			Type      string          `json:"type"`
			Step      string          `json:"step"`
			Message   string          `json:"message"`
			ElapsedMS int64           `json:"elapsed_ms"`
			Status    int             `json:"status"`
			Data      json.RawMessage `json:"data"`
			Error     json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, c.fail("deploy", fmt.Errorf("unreadable progress line: %w", err))
		}
		switch line.Type {
		case "progress":
			if progress != nil {
				progress(Progress{Step: line.Step, Message: line.Message, Elapsed: time.Duration(line.ElapsedMS) * time.Millisecond})
			}
		case "result":
			var d DeployResult
			if err := json.Unmarshal(line.Data, &d); err != nil {
				return nil, c.fail("deploy", fmt.Errorf("decode response data: %w", err))
			}
			return &d, nil
		case "error":
			e := errorFromJSON(line.Error)
			e.Status = line.Status
			e.RequestID = resp.Header.Get("X-Request-ID")
			return nil, c.fail("deploy", e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, c.fail("deploy", fmt.Errorf("read progress: %w", err))
	}
	return nil, c.fail("deploy", errors.New("the server ended the deploy's progress without a result"))
}

// Builds lists an agent's builds, newest first, without their logs.
func (c *Client) Builds(ctx context.Context, agentID string, limit int) ([]Build, error) {
	var out struct {
		Builds []Build `json:"builds"`
	}
	u := c.endpoint("agents", agentID, "builds")
	if limit > 0 {
		u += "?" + url.Values{"limit": {strconv.Itoa(limit)}}.Encode()
	}
	if _, err := c.call(ctx, "list builds", http.MethodGet, u, nil, "", &out); err != nil {
		return nil, err
	}
	return out.Builds, nil
}

// Build returns one build with its log.
func (c *Client) Build(ctx context.Context, id string) (*Build, error) {
	var b Build
	if _, err := c.call(ctx, "get build", http.MethodGet, c.endpoint("builds", id), nil, "", &b); err != nil {
		return nil, err
	}
	return &b, nil
}
