package api

import (
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

// The audit trail's admin routes (owners): query, export, verify.

func (h *trailHandlers) auditFilter(r *http.Request) (audit.Filter, error) {
	if h.auditStore == nil {
		return audit.Filter{}, core.Errorf(core.CodeNotFound, "this server keeps no audit trail")
	}
	return audit.ParseFilter(r.URL.Query())
}

func (h *trailHandlers) listAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := h.auditFilter(r)
	if err != nil {
		return err
	}
	recs, err := audit.Records(r.Context(), h.auditStore, f)
	if err != nil {
		return err
	}
	data := map[string]any{"records": recs}
	if len(recs) > 0 && len(recs) == f.PageSize() {
		// More may follow: the next page is ?after=<this>.
		data["next_after"] = recs[len(recs)-1].Seq
	}
	h.writeData(w, r, http.StatusOK, data)
	return nil
}

func (h *trailHandlers) exportAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := h.auditFilter(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	n, err := audit.Export(r.Context(), w, h.auditStore, f)
	noteAudit(r, "exported", strconv.FormatInt(n, 10))
	if err != nil {
		// Headers are out: the client sees a short export; the log and
		// the audit record say why.
		h.log.Error("audit export stopped", "request_id", requestID(r), "records", n, "err", err)
		noteStatus(r, http.StatusInternalServerError)
	}
	return nil
}

func (h *trailHandlers) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	if h.auditStore == nil {
		return core.Errorf(core.CodeNotFound, "this server keeps no audit trail")
	}
	rep, err := audit.Verify(r.Context(), h.auditStore, h.auditKey)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, VerifyReportOf(rep))
	return nil
}

// VerifyReport is the JSON form of an audit.Report.
type VerifyReport struct {
	OK          bool   `json:"ok"`
	Checked     int64  `json:"checked"`
	Checkpoints int    `json:"checkpoints"`
	FirstSeq    int64  `json:"first_seq"`
	LastSeq     int64  `json:"last_seq"`
	HeadSeq     int64  `json:"head_seq"`
	HeadHash    string `json:"head_hash,omitempty"`
	// StartSeq is the latest purge checkpoint the chain was checked from.
	StartSeq int64          `json:"start_seq,omitempty"`
	Problem  *VerifyProblem `json:"problem,omitempty"`
}

// VerifyProblem is the first broken link.
type VerifyProblem struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// VerifyReportOf is rep in its JSON form.
func VerifyReportOf(rep audit.Report) VerifyReport {
	v := VerifyReport{OK: rep.OK, Checked: rep.Checked, Checkpoints: rep.Checkpoints, FirstSeq: rep.FirstSeq, LastSeq: rep.LastSeq,
		HeadSeq: rep.Head.Seq}
	if len(rep.Head.Hash) > 0 {
		v.HeadHash = hex.EncodeToString(rep.Head.Hash)
	}
	if rep.Start != nil {
		v.StartSeq = rep.Start.Seq
	}
	if rep.Problem != nil {
		v.Problem = &VerifyProblem{Seq: rep.Problem.Seq, Kind: string(rep.Problem.Kind), Detail: rep.Problem.Detail}
	}
	return v
}
