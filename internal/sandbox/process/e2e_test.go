//go:build linux

package process

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/guest"
)

func fixture(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestValues(t *testing.T) {
	src := fixture(t, "values.py")
	tests := []struct {
		module string
		args   string
		kwargs string
		want   string
	}{
		{module: "ret_dict", want: `{"a":1,"b":[1,2.5,null],"c":{"d":true}}`},
		{module: "ret_list", want: `[1,"two",3.0,false,null]`},
		{module: "ret_str", want: `"héllo ✓ \"quoted\"\n"`},
		{module: "ret_int", want: `42`},
		{module: "ret_big_int", want: `1180591620717411303424`},
		{module: "ret_negative_float", want: `-1.5e-07`},
		{module: "ret_float", want: `1.0`},
		{module: "ret_true", want: `true`},
		{module: "ret_none", want: `null`},
		{module: "ret_tuple", want: `[1,"a",[2]]`},
		{module: "ret_dataclass", want: `{"x":1,"y":2.5,"tags":[3,4]}`},
		{module: "ret_model_v2", want: `{"v":2,"mode":"json","nested":{"x":1,"y":0.5,"tags":[]}}`},
		{module: "ret_model_v1", want: `[{"v":1}]`},
		{module: "ret_generator", want: `[0,1,2]`},
		{module: "ret_async", args: `[4]`, want: `8`},
		{module: "ret_coroutine", want: `42`},
		{module: "ret_async_generator", want: `[0,1]`},
		{module: "echo", args: `[1, "x", 2.50]`, kwargs: `{"k": [1.5, {"z": null}]}`,
			want: `{"args":[1,"x",2.5],"kwargs":{"k":[1.5,{"z":null}]}}`},
		{module: "agent.run", args: `["x"]`, want: `"p-x"`},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			a := startAgent(t, map[string]string{"main.py": src}, refs("t="+tt.module), options{})
			if st, _ := a.hello.Entrypoint("t"); !st.OK {
				t.Fatalf("entrypoint %s failed to load: %+v", tt.module, st.Error)
			}
			o := a.run(t, call{tag: "t", args: tt.args, kwargs: tt.kwargs})
			if o.err != nil {
				t.Fatalf("%s(%s, %s) failed: %v", tt.module, tt.args, tt.kwargs, o.err)
			}
			if o.result != tt.want || len(o.chunks) != 0 {
				t.Errorf("%s(%s, %s) = %s (chunks %q), want %s", tt.module, tt.args, tt.kwargs, o.result, o.chunks, tt.want)
			}
			if exit := a.sb.Wait(); exit.Code != 0 {
				t.Errorf("guest exited %d (%s), want 0; logs:\n%s", exit.Code, exit.Signal, exit.Logs)
			}
		})
	}
}

func TestHello(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": fixture(t, "values.py")},
		refs("a=ret_int", "b=ret_str", "a_stream=ret_generator"), options{})
	if a.hello.Runtime != "python" || !strings.HasPrefix(a.hello.Version, "3.") {
		t.Errorf("hello runtime %q version %q, want python 3.x", a.hello.Runtime, a.hello.Version)
	}
	var tags []string
	for _, e := range a.hello.Entrypoints {
		if !e.OK {
			t.Errorf("entrypoint %s failed: %+v", e.Tag, e.Error)
		}
		tags = append(tags, e.Tag)
	}
	if got, want := strings.Join(tags, ","), "a,b,a_stream"; got != want {
		t.Errorf("hello entrypoints %s, want %s", got, want)
	}
}

// TestEnvironment checks the guest's environment: the minimal base, the
// spec's additions, the invoke's additions, and nothing else of the host's.
func TestEnvironment(t *testing.T) {
	t.Setenv("RUNAGENT_HOST_ONLY", "leaked")
	a := startAgent(t, map[string]string{"main.py": fixture(t, "values.py")}, refs("t=getenv"),
		options{env: []string{"SPEC_VAR=spec", "LANG=en_US.UTF-8"}})
	o := a.run(t, call{
		tag:  "t",
		args: `["RUNAGENT_HOST_ONLY","SPEC_VAR","CALL_SECRET","LANG","PYTHONUNBUFFERED","HOME"]`,
		env:  map[string]string{"CALL_SECRET": "s3cret"},
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	for _, want := range []string{`"RUNAGENT_HOST_ONLY":null`, `"SPEC_VAR":"spec"`, `"CALL_SECRET":"s3cret"`,
		`"LANG":"en_US.UTF-8"`, `"PYTHONUNBUFFERED":"1"`, `"HOME":"` + os.TempDir()} {
		if !strings.Contains(o.result, want) {
			t.Errorf("environment %s lacks %s", o.result, want)
		}
	}
}

// TestStreamGenerator checks chunks leave the guest as they are yielded:
// the agent blocks after its first chunk until the test, having received
// it, creates the gate file.
func TestStreamGenerator(t *testing.T) {
	const src = `import asyncio, os, time

def wait_gate(gate):
    deadline = time.monotonic() + 30
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError("gate never opened")
        time.sleep(0.002)

def gen(gate, n):
    for i in range(n):
        yield {"i": i}
        if i == 0:
            wait_gate(gate)

async def agen(gate, n):
    for i in range(n):
        yield {"i": i}
        if i == 0:
            while not os.path.exists(gate):
                await asyncio.sleep(0.002)

async def coro_gen(gate, n):
    return gen(gate, n)
`
	for _, module := range []string{"gen", "agen", "coro_gen"} {
		t.Run(module, func(t *testing.T) {
			a := startAgent(t, map[string]string{"main.py": src}, refs("s_stream="+module), options{})
			gate := filepath.Join(t.TempDir(), "gate")
			a.invoke(t, call{tag: "s_stream", args: `["` + gate + `", 5]`, stream: true})
			ev, err := a.next(t, 20*time.Second)
			if err != nil || ev.Kind != guest.Chunk || string(ev.Value) != `{"i":0}` {
				t.Fatalf("first event = %v %s, %v; want chunk {\"i\":0}", ev.Kind, ev.Value, err)
			}
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			o := a.collect(t, 1)
			if o.err != nil {
				t.Fatal(o.err)
			}
			if got, want := strings.Join(o.chunks, " "), `{"i":1} {"i":2} {"i":3} {"i":4}`; got != want {
				t.Errorf("chunks after the gate: %s, want %s", got, want)
			}
			if o.result != "null" {
				t.Errorf("stream result %s, want null", o.result)
			}
		})
	}
}

func TestStreamIterables(t *testing.T) {
	const src = `def items():
    return [1, "a", None, 2.0]

def empty():
    return iter(())

def tuple_():
    return (1,)
`
	tests := []struct {
		module string
		want   string
	}{
		{"items", `1 "a" null 2.0`},
		{"empty", ``},
		{"tuple_", `1`},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			a := startAgent(t, map[string]string{"main.py": src}, refs("x_stream="+tt.module), options{})
			o := a.run(t, call{tag: "x_stream", stream: true})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if got := strings.Join(o.chunks, " "); got != tt.want || o.result != "null" {
				t.Errorf("%s streamed %q then %s, want %q then null", tt.module, got, o.result, tt.want)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	src := fixture(t, "errors.py")
	tests := []struct {
		name      string
		module    string
		stream    bool
		chunks    string // chunks before the failure
		code      string
		typ       string
		message   string // substring
		traceback string // substring; "" means the traceback must be empty
	}{
		{"ValueError", "raises", false, "", guest.CodeAgentError, "ValueError", "bad input: 1", `main.py", line 8, in helper`},
		{"async KeyError", "raises_async", false, "", guest.CodeAgentError, "KeyError", "missing", `main.py", line 17, in raises_async`},
		{"sys.exit", "exits", false, "", guest.CodeAgentError, "SystemExit", "3", "sys.exit(3)"},
		{"KeyboardInterrupt", "interrupted", false, "", guest.CodeAgentError, "KeyboardInterrupt", "", "raise KeyboardInterrupt"},
		{"unprintable", "raises_unprintable", false, "", guest.CodeAgentError, "Unprintable", "<unprintable Unprintable>", "raise Unprintable()"},
		{"NaN", "ret_nan", false, "", guest.CodeSerializationError, "ValueError", "NaN", ""},
		{"Infinity", "ret_inf_nested", false, "", guest.CodeSerializationError, "ValueError", "result", ""},
		{"object", "ret_object", false, "", guest.CodeSerializationError, "TypeError", "object of type object is not JSON serializable", ""},
		{"set", "ret_set", false, "", guest.CodeSerializationError, "TypeError", "type set", ""},
		{"lone surrogate", "ret_surrogate", false, "", guest.CodeSerializationError, "UnicodeEncodeError", "surrogate", ""},
		{"circular", "ret_circular", false, "", guest.CodeSerializationError, "ValueError", "ircular", ""},
		{"bad model_dump", "ret_bad_model", false, "", guest.CodeSerializationError, "TypeError", "model_dump() returned str", ""},
		{"generator raises", "gen_raises", true, "1 2", guest.CodeAgentError, "RuntimeError", "midway", "gen_raises"},
		{"bad chunk", "gen_bad_chunk", true, "1", guest.CodeSerializationError, "TypeError", "chunk 1", ""},
		{"stream of an int", "ret_int", true, "", guest.CodeEntrypointError, "TypeError", "returned int", ""},
		{"stream of a str", "ret_str", true, "", guest.CodeEntrypointError, "TypeError", "returned str", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := "t"
			if tt.stream {
				tag = "t_stream"
			}
			a := startAgent(t, map[string]string{"main.py": src}, refs(tag+"="+tt.module), options{})
			args := ""
			if tt.module == "raises" {
				args = "[1]"
			}
			o := a.run(t, call{tag: tag, args: args, stream: tt.stream})
			f := o.failure(t)
			if got := strings.Join(o.chunks, " "); got != tt.chunks {
				t.Errorf("chunks before the failure: %q, want %q", got, tt.chunks)
			}
			if f.Code != tt.code || f.Type != tt.typ || !strings.Contains(f.Message, tt.message) {
				t.Errorf("failure %s %s %q, want %s %s containing %q", f.Code, f.Type, f.Message, tt.code, tt.typ, tt.message)
			}
			if tt.traceback == "" && f.Traceback != "" || !strings.Contains(f.Traceback, tt.traceback) {
				t.Errorf("traceback %q, want one containing %q", f.Traceback, tt.traceback)
			}
			if strings.Contains(f.Traceback, a.dir) {
				t.Errorf("traceback names the agent directory %s:\n%s", a.dir, f.Traceback)
			}
			if strings.Contains(f.Traceback, "shim") || strings.Contains(f.Traceback, "asyncio") {
				t.Errorf("traceback shows the shim's frames:\n%s", f.Traceback)
			}
			if exit := a.sb.Wait(); exit.Code != 0 {
				t.Errorf("guest exited %d (%s), want 0", exit.Code, exit.Signal)
			}
		})
	}
}

func TestHardExit(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": fixture(t, "errors.py")}, refs("t=hard_exit"), options{})
	o := a.run(t, call{tag: "t"})
	if !errors.Is(o.err, guest.ErrClosed) {
		t.Fatalf("call ended with %q, %v; want ErrClosed", o.result, o.err)
	}
	exit := a.sb.Wait()
	if exit.Code != 7 || exit.Signal != "" {
		t.Errorf("guest exited %d (%q), want 7", exit.Code, exit.Signal)
	}
	if exit.Logs != "exiting hard\n" || exit.Truncated {
		t.Errorf("logs %q (truncated %v), want %q", exit.Logs, exit.Truncated, "exiting hard\n")
	}
}

func TestLoadFailures(t *testing.T) {
	files := map[string]string{
		"main.py":    "import os\nimport no_such_module_for_runagent_test\n",
		"syntax.py":  "def f(:\n    pass\n",
		"good.py":    "def f():\n    return 'good'\nCONST = 3\n",
		"exits.py":   "import sys\nsys.exit(4)\n",
		"dash-ed.py": "def f():\n    return 'dashed'\n",
	}
	eps := []guest.EntrypointRef{
		{Tag: "import_error", File: "main.py", Module: "f"},
		{Tag: "syntax_error", File: "syntax.py", Module: "f"},
		{Tag: "good", File: "good.py", Module: "f"},
		{Tag: "missing_attr", File: "good.py", Module: "nope"},
		{Tag: "not_callable", File: "good.py", Module: "CONST"},
		{Tag: "missing_file", File: "absent.py", Module: "f"},
		{Tag: "exits_on_import", File: "exits.py", Module: "f"},
		{Tag: "dashed", File: "dash-ed.py", Module: "f"},
	}
	tests := []struct {
		tag       string
		ok        bool
		typ       string
		traceback string
	}{
		{"import_error", false, "ModuleNotFoundError", `main.py", line 2, in <module>`},
		{"syntax_error", false, "SyntaxError", "syntax.py"},
		{"good", true, "", ""},
		{"missing_attr", false, "AttributeError", ""},
		{"not_callable", false, "TypeError", ""},
		{"missing_file", false, "FileNotFoundError", ""},
		{"exits_on_import", false, "SystemExit", `exits.py", line 2`},
		{"dashed", true, "", ""},
	}
	a := startAgent(t, files, eps, options{})
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			st, ok := a.hello.Entrypoint(tt.tag)
			if !ok {
				t.Fatalf("hello lacks entrypoint %s", tt.tag)
			}
			if st.OK != tt.ok {
				t.Fatalf("entrypoint %s ok=%v (%+v), want %v", tt.tag, st.OK, st.Error, tt.ok)
			}
			if tt.ok {
				return
			}
			if st.Error.Code != guest.CodeEntrypointError || st.Error.Type != tt.typ {
				t.Errorf("entrypoint %s error %s %s, want %s %s", tt.tag, st.Error.Code, st.Error.Type, guest.CodeEntrypointError, tt.typ)
			}
			if !strings.Contains(st.Error.Traceback, tt.traceback) || strings.Contains(st.Error.Traceback, "shim") {
				t.Errorf("entrypoint %s traceback %q, want one containing %q and no shim frame", tt.tag, st.Error.Traceback, tt.traceback)
			}
		})
	}
}

func TestInvokeFailedEntrypoint(t *testing.T) {
	tests := []struct {
		tag, typ string
	}{
		{"missing_attr", "AttributeError"},
		{"unknown_tag", "LookupError"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			a := startAgent(t, map[string]string{"main.py": "x = 1\n"}, refs("missing_attr=nope"), options{})
			f := a.run(t, call{tag: tt.tag}).failure(t)
			if f.Code != guest.CodeEntrypointError || f.Type != tt.typ {
				t.Errorf("invoking %s: %s %s, want %s %s", tt.tag, f.Code, f.Type, guest.CodeEntrypointError, tt.typ)
			}
		})
	}
}

// TestImports checks each file is imported once, packages and relative
// imports work, and the agent directory is the working directory.
func TestImports(t *testing.T) {
	files := map[string]string{
		"main.py":         "import helper\nprint('loading main')\ndef f():\n    return helper.VALUE\n",
		"helper.py":       "print('loading helper')\nVALUE = 'from helper'\ndef g():\n    return VALUE\n",
		"pkg/__init__.py": "",
		"pkg/agent.py":    "from .util import twice\nfrom . import util\ndef run():\n    return twice(util.BASE)\n",
		"pkg/util.py":     "BASE = 21\ndef twice(x):\n    return 2 * x\n",
		"data/input.txt":  "read relative\n",
		"reader.py":       "def read():\n    with open('data/input.txt') as f:\n        return f.read()\n",
		"json.py":         "def f():\n    return 'shadowing json'\n",
	}
	tests := []struct {
		tag  string
		want string
	}{
		{"main", `"from helper"`},
		{"helper", `"from helper"`},
		{"pkg", `42`},
		{"reader", `"read relative\n"`},
		{"json", `"shadowing json"`},
	}
	eps := []guest.EntrypointRef{
		{Tag: "main", File: "main.py", Module: "f"},
		{Tag: "main2", File: "main.py", Module: "f"},
		{Tag: "helper", File: "helper.py", Module: "g"},
		{Tag: "pkg", File: "pkg/agent.py", Module: "run"},
		{Tag: "reader", File: "reader.py", Module: "read"},
		{Tag: "json", File: "json.py", Module: "f"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			a := startAgent(t, files, eps, options{})
			o := a.run(t, call{tag: tt.tag})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if o.result != tt.want {
				t.Errorf("%s = %s, want %s", tt.tag, o.result, tt.want)
			}
			exit := a.sb.Wait()
			if got := strings.Count(exit.Logs, "loading helper"); got != 1 {
				t.Errorf("helper.py imported %d times, want 1; logs:\n%s", got, exit.Logs)
			}
			if got := strings.Count(exit.Logs, "loading main"); got != 1 {
				t.Errorf("main.py imported %d times, want 1; logs:\n%s", got, exit.Logs)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	const src = `import sys
def noisy(n):
    for i in range(n):
        print("line %d" % i)
    print("to stderr", file=sys.stderr)
    return 1
`
	tests := []struct {
		name      string
		lines     int
		limit     int
		truncated bool
	}{
		{"small", 2, 0, false},
		{"10k lines", 10000, 4096, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, map[string]string{"main.py": src}, refs("t=noisy"), options{logLimit: tt.limit})
			o := a.run(t, call{tag: "t", args: "[" + strconv.Itoa(tt.lines) + "]"})
			if o.err != nil || o.result != "1" {
				t.Fatalf("noisy = %s, %v; want 1", o.result, o.err)
			}
			exit := a.sb.Wait()
			if exit.Truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", exit.Truncated, tt.truncated)
			}
			limit := tt.limit
			if limit == 0 {
				limit = DefaultLogLimit
			}
			if len(exit.Logs) > limit {
				t.Errorf("logs are %d bytes, over the %d-byte limit", len(exit.Logs), limit)
			}
			wantEnd := "line " + strconv.Itoa(tt.lines-1) + "\nto stderr\n"
			if !strings.HasSuffix(exit.Logs, wantEnd) {
				t.Errorf("logs end %q, want %q", tail(exit.Logs, 40), wantEnd)
			}
			if !tt.truncated && exit.Logs != "line 0\nline 1\nto stderr\n" {
				t.Errorf("logs %q, want all the output", exit.Logs)
			}
		})
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestCompiledShim runs calls through the shim's bytecode: results, errors
// with trimmed tracebacks, and streams.
func TestCompiledShim(t *testing.T) {
	src := fixture(t, "errors.py")
	a := startAgent(t, map[string]string{"main.py": src}, refs("t=raises"), options{compiled: true})
	f := a.run(t, call{tag: "t", args: "[1]"}).failure(t)
	if f.Code != guest.CodeAgentError || f.Type != "ValueError" || !strings.HasPrefix(f.Traceback, "Traceback (most recent call last):\n  File \"main.py\", line 12, in raises") {
		t.Errorf("failure %s %s, traceback:\n%s\nwant AGENT_ERROR ValueError from main.py first", f.Code, f.Type, f.Traceback)
	}

	a = startAgent(t, map[string]string{"main.py": "def f():\n    yield from (1.0, 2)\n"}, refs("f_stream=f"), options{compiled: true})
	o := a.run(t, call{tag: "f_stream", stream: true})
	if o.err != nil || strings.Join(o.chunks, " ") != "1.0 2" || o.result != "null" {
		t.Errorf("stream = %q then %q, %v; want 1.0 2 then null", o.chunks, o.result, o.err)
	}
}
