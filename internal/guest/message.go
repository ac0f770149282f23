package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Frame types (the "type" field of every frame).
const (
	typeInit   = "init"
	typeInvoke = "invoke"
	typeHello  = "hello"
	typeChunk  = "chunk"
	typeResult = "result"
	typeError  = "error"
)

// Error codes a guest puts in a Failure.
const (
	CodeAgentError         = "AGENT_ERROR"
	CodeSerializationError = "SERIALIZATION_ERROR"
	CodeEntrypointError    = "ENTRYPOINT_ERROR"
	CodeProtocolError      = "PROTOCOL_ERROR"
	CodeSandboxError       = "SANDBOX_ERROR"
)

// EntrypointRef names one entrypoint for the guest to load: the function
// at the dotted attribute path Module of the file File (relative to the
// agent directory).
type EntrypointRef struct {
	Tag    string `json:"tag"`
	File   string `json:"file"`
	Module string `json:"module"`
}

// Init is the first frame the host sends. Paths are the guest's: where
// the sandbox shows the directories to the guest, not the host's paths.
type Init struct {
	// AgentDir is the agent's code; the guest imports entrypoints from it.
	AgentDir    string          `json:"agent_dir"`
	Entrypoints []EntrypointRef `json:"entrypoints"`
	// EnvDir is the agent's built environment (a directory holding
	// site-packages/), made importable before the agent is; "" means none.
	EnvDir string `json:"env_dir,omitempty"`
}

// EntrypointStatus says whether the guest could load one entrypoint.
type EntrypointStatus struct {
	Tag   string   `json:"tag"`
	OK    bool     `json:"ok"`
	Error *Failure `json:"error,omitempty"`
	// Generator: the entrypoint is a generator function (sync or async),
	// whose result streams.
	Generator bool `json:"generator,omitempty"`
}

// Hello is the guest's answer to Init.
type Hello struct {
	Runtime     string             `json:"runtime"`
	Version     string             `json:"version"`
	Entrypoints []EntrypointStatus `json:"entrypoints"`
	// ForkRefused, from a fork server (a linux backend template), says
	// why its process must not be forked (threads left running, a file
	// left open for writing by the agent's import); "" if it may be.
	ForkRefused string `json:"fork_refused,omitempty"`
}

// Entrypoint returns the status of the entrypoint tagged tag.
func (h Hello) Entrypoint(tag string) (EntrypointStatus, bool) {
	for _, e := range h.Entrypoints {
		if e.Tag == tag {
			return e, true
		}
	}
	return EntrypointStatus{}, false
}

// Invoke is the one call the host asks of a guest. Args must be a JSON
// array and Kwargs a JSON object; nil means empty.
type Invoke struct {
	ID     string            `json:"id"`
	Tag    string            `json:"tag"`
	Args   json.RawMessage   `json:"args"`
	Kwargs json.RawMessage   `json:"kwargs"`
	Stream bool              `json:"stream"`
	Env    map[string]string `json:"env"`
	// Keep asks the guest to wait for another invoke after answering this
	// one instead of exiting (sandbox reuse per user_id). LogMark, set
	// with Keep, is a line the guest writes to stderr after the call's
	// output and before it waits, so the host can cut one call's logs from
	// the next one's.
	Keep    bool   `json:"keep,omitempty"`
	LogMark string `json:"log_mark,omitempty"`
}

// Failure is an error the guest reported: the agent raised, a value was
// not JSON, an entrypoint could not be loaded, or the guest rejected a
// frame. Code is one of the Code… constants.
type Failure struct {
	Code      string `json:"code"`
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

func (f *Failure) Error() string {
	var b bytes.Buffer
	b.WriteString(f.Code)
	if f.Type != "" {
		b.WriteString(": ")
		b.WriteString(f.Type)
	}
	if f.Message != "" {
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// ProtocolError is a frame that breaks the protocol: too large, not JSON,
// of an unknown or unexpected type, out of sequence, or for another call.
type ProtocolError struct {
	Msg string
	Err error // optional cause, such as ErrFrameTooLarge or ErrOutputLimit
}

func (e *ProtocolError) Error() string {
	if e.Err != nil && e.Err.Error() != e.Msg {
		return "guest protocol error: " + e.Msg + ": " + e.Err.Error()
	}
	return "guest protocol error: " + e.Msg
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func protocolErrorf(format string, args ...any) *ProtocolError {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// message is any frame the guest sends, decoded.
type message struct {
	Type string `json:"type"`

	// hello
	Runtime     string             `json:"runtime"`
	Version     string             `json:"version"`
	Entrypoints []EntrypointStatus `json:"entrypoints"`
	ForkRefused string             `json:"fork_refused"`

	// chunk, result, error
	ID    string          `json:"id"`
	Seq   *int            `json:"seq"`
	Value json.RawMessage `json:"value"`
	Error *Failure        `json:"error"`
}

// decodeMessage decodes and checks one frame from the guest. It returns a
// *ProtocolError for anything that is not a well-formed guest frame.
func decodeMessage(b []byte) (message, error) {
	var m message
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return message{}, protocolErrorf("frame is not a JSON object")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return message{}, &ProtocolError{Msg: "frame field has the wrong type", Err: err}
		}
		return message{}, &ProtocolError{Msg: "frame is not valid JSON", Err: err}
	}
	switch m.Type {
	case typeHello:
		for i, e := range m.Entrypoints {
			if e.Tag == "" {
				return message{}, protocolErrorf("hello entrypoint %d has no tag", i)
			}
			if !e.OK && e.Error == nil {
				return message{}, protocolErrorf("hello entrypoint %q failed without an error", e.Tag)
			}
		}
	case typeChunk:
		if m.Seq == nil {
			return message{}, protocolErrorf("chunk without seq")
		}
		if m.Value == nil {
			return message{}, protocolErrorf("chunk without value")
		}
	case typeResult:
		if m.Value == nil {
			m.Value = json.RawMessage("null")
		}
	case typeError:
		if m.Error == nil {
			return message{}, protocolErrorf("error frame without error")
		}
		if m.Error.Code == "" {
			return message{}, protocolErrorf("error frame without code")
		}
	case "":
		return message{}, protocolErrorf("frame without type")
	default:
		return message{}, protocolErrorf("unknown frame type %q", m.Type)
	}
	return m, nil
}

// encodeInit returns the payload of an init frame.
func encodeInit(in Init) ([]byte, error) {
	if in.AgentDir == "" {
		return nil, errors.New("init without agent directory")
	}
	eps := in.Entrypoints
	if eps == nil {
		eps = []EntrypointRef{}
	}
	return json.Marshal(struct {
		Type        string          `json:"type"`
		AgentDir    string          `json:"agent_dir"`
		Entrypoints []EntrypointRef `json:"entrypoints"`
		EnvDir      string          `json:"env_dir,omitempty"`
	}{typeInit, in.AgentDir, eps, in.EnvDir})
}

// encodeInvoke returns the payload of an invoke frame, checking that Args
// is an array and Kwargs an object.
func encodeInvoke(in Invoke) ([]byte, error) {
	if in.ID == "" {
		return nil, errors.New("invoke without id")
	}
	if in.Tag == "" {
		return nil, errors.New("invoke without tag")
	}
	args, err := rawOf(in.Args, '[', "[]")
	if err != nil {
		return nil, fmt.Errorf("invoke args: %w", err)
	}
	kwargs, err := rawOf(in.Kwargs, '{', "{}")
	if err != nil {
		return nil, fmt.Errorf("invoke kwargs: %w", err)
	}
	env := in.Env
	if env == nil {
		env = map[string]string{}
	}
	return json.Marshal(struct {
		Type   string            `json:"type"`
		ID     string            `json:"id"`
		Tag    string            `json:"tag"`
		Args   json.RawMessage   `json:"args"`
		Kwargs json.RawMessage   `json:"kwargs"`
		Stream bool              `json:"stream"`
		Env    map[string]string `json:"env"`
		Keep   bool              `json:"keep,omitempty"`
		Mark   string            `json:"log_mark,omitempty"`
	}{typeInvoke, in.ID, in.Tag, args, kwargs, in.Stream, env, in.Keep, in.LogMark})
}

// rawOf checks that raw is one JSON value starting with open, or returns
// empty for nil.
func rawOf(raw json.RawMessage, open byte, empty string) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return json.RawMessage(empty), nil
	}
	if t[0] != open || !json.Valid(t) {
		want := "an array"
		if open == '{' {
			want = "an object"
		}
		return nil, fmt.Errorf("not %s", want)
	}
	return t, nil
}
