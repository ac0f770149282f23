package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// AuditRecord is one record of the server's audit trail.
type AuditRecord struct {
	Seq         int64             `json:"seq"`
	Time        time.Time         `json:"time"`
	PrincipalID string            `json:"principal_id,omitempty"`
	KeyID       string            `json:"key_id,omitempty"`
	Subject     string            `json:"subject,omitempty"`
	Action      string            `json:"action"`
	Resource    string            `json:"resource"`
	Outcome     string            `json:"outcome"`
	IP          string            `json:"ip,omitempty"`
	UserAgent   string            `json:"user_agent,omitempty"`
	RequestID   string            `json:"request_id,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

// AuditReport is the server's verification of its audit trail.
type AuditReport struct {
	OK          bool   `json:"ok"`
	Checked     int64  `json:"checked"`
	Checkpoints int    `json:"checkpoints"`
	FirstSeq    int64  `json:"first_seq"`
	LastSeq     int64  `json:"last_seq"`
	HeadSeq     int64  `json:"head_seq"`
	HeadHash    string `json:"head_hash,omitempty"`
	StartSeq    int64  `json:"start_seq,omitempty"`
	Problem     *struct {
		Seq    int64  `json:"seq"`
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	} `json:"problem,omitempty"`
}

// AuditRecords returns one page of audit records matching filter
// (principal_id, action, resource, outcome, since, until, after, limit),
// oldest first, and the after= of the next page (0: none). Owners only.
func (c *Client) AuditRecords(ctx context.Context, filter url.Values) ([]AuditRecord, int64, error) {
	var out struct {
		Records   []AuditRecord `json:"records"`
		NextAfter int64         `json:"next_after"`
	}
	if _, err := c.call(ctx, "list audit records", http.MethodGet, withQuery(c.endpoint("audit"), filter), nil, "", &out); err != nil {
		return nil, 0, err
	}
	return out.Records, out.NextAfter, nil
}

// VerifyAudit has the server walk its whole audit trail.
func (c *Client) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	var rep AuditReport
	if _, err := c.call(ctx, "verify the audit trail", http.MethodGet, c.endpoint("audit", "verify"), nil, "", &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// ExportAudit copies every matching record, as JSON lines, to w and
// returns how many it copied.
func (c *Client) ExportAudit(ctx context.Context, filter url.Values, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, withQuery(c.endpoint("audit", "export"), filter), nil)
	if err != nil {
		return 0, c.fail("export the audit trail", err)
	}
	c.setHeaders(req.Header)
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, c.fail("export the audit trail", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, err := decodeEnvelope(resp.StatusCode, resp.Header, b)
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return 0, c.fail("export the audit trail", err)
	}
	var n int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxResponse)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			return n, c.fail("export the audit trail", fmt.Errorf("line %d is not JSON", n+1))
		}
		if _, err := fmt.Fprintf(w, "%s\n", sc.Bytes()); err != nil {
			return n, err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, c.fail("export the audit trail", err)
	}
	return n, nil
}

func withQuery(u string, q url.Values) string {
	if len(q) == 0 {
		return u
	}
	return u + "?" + q.Encode()
}
