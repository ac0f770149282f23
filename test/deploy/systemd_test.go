package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "deploy/systemd/runagent.service"

// unitDirectives returns the [Service] directives of the unit, in order.
func unitDirectives(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open(repoFile(unitFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is no directive", unitFile, line)
			}
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// unitForVerify writes the unit, its ExecStart pointing at the binary
// under test (the verifier checks that the program exists), to a
// directory of its own and returns its path.
func unitForVerify(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(unitFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "ExecStart=/usr/local/bin/runagent ") {
		t.Fatalf("%s: ExecStart should run /usr/local/bin/runagent", unitFile)
	}
	path := filepath.Join(t.TempDir(), "runagent.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/runagent", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func needSystemdAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatalf("systemd-analyze is not installed (%v): run scripts/deps.sh, which installs Debian's systemd", err)
	}
}

// TestSystemdUnitVerifies: systemd's own verifier accepts the unit
// without a warning (an unknown or misspelt directive, a bad value).
func TestSystemdUnitVerifies(t *testing.T) {
	needSystemdAnalyze(t)
	out, err := exec.Command("systemd-analyze", "verify", unitForVerify(t)).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdUnitLockedDown: beyond what the sandbox needs, the unit is
// locked down: systemd's own exposure score stays at or below 6.0 (of
// 10; a unit with no settings scores 9.6), the secrets arrive only as
// credentials named by *_FILE variables, and no URL or key is on the
// command line or in the environment.
func TestSystemdUnitLockedDown(t *testing.T) {
	needSystemdAnalyze(t)
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", unitForVerify(t)).CombinedOutput()
	m := exposureRE.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security: %v, no exposure level in:\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(m[1], 64); score > 6.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 6.0:\n%s", score, out)
	}

	creds := map[string]bool{}
	env := map[string]string{}
	for _, d := range unitDirectives(t) {
		k, v := d[0], d[1]
		switch k {
		case "LoadCredential":
			name, src, _ := strings.Cut(v, ":")
			creds[name] = true
			if !strings.HasPrefix(src, "/etc/runagent/") {
				t.Errorf("credential %s from %s, want a root-only file in /etc/runagent", name, src)
			}
		case "Environment":
			name, val, _ := strings.Cut(v, "=")
			env[name] = val
		case "ExecStart":
			if strings.Contains(v, "://") || strings.Contains(v, "key") || strings.Contains(v, "password") {
				t.Errorf("ExecStart=%s: secrets on the command line show in the process list", v)
			}
		case "PassEnvironment", "SetCredential":
			t.Errorf("%s=%s: secrets come from files (LoadCredential=) only", k, v)
		}
		if strings.Contains(v, "://") {
			t.Errorf("%s=%s holds a URL; URLs carry credentials: read it from a credential", k, v)
		}
	}
	for _, want := range []struct{ env, cred string }{
		{"RUNAGENT_STORE_URL_FILE", "store-url"},
		{"RUNAGENT_REDIS_URL_FILE", "redis-url"},
		{"RUNAGENT_MASTER_KEY_FILE", "master.key"},
		{"RUNAGENT_BOOTSTRAP_KEY_FILE", "bootstrap-key"},
	} {
		if !creds[want.cred] || env[want.env] != "%d/"+want.cred {
			t.Errorf("%s=%q, credential %s loaded: %v; want %%d/%s from LoadCredential=%s:…", want.env, env[want.env], want.cred, creds[want.cred], want.cred, want.cred)
		}
	}
}

// unitCaps returns the unit's bounding set as setpriv names
// capabilities (+sys_admin,…), and whether it sets NoNewPrivileges.
func unitCaps(t *testing.T) (string, bool) {
	t.Helper()
	var caps []string
	nnp := false
	for _, d := range unitDirectives(t) {
		switch d[0] {
		case "CapabilityBoundingSet":
			for _, c := range strings.Fields(d[1]) {
				caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		case "NoNewPrivileges":
			nnp = d[1] == "yes"
		}
	}
	if len(caps) == 0 {
		t.Fatalf("%s has no CapabilityBoundingSet", unitFile)
	}
	return strings.Join(caps, ","), nnp
}

// TestSystemdCapabilitiesRunSandbox: the capabilities the unit keeps are
// enough for the linux sandbox: a server started with exactly that
// bounding set (and no_new_privs, as NoNewPrivileges=yes) deploys an
// agent, runs it, and keeps a user's persistent memory (loop device,
// ext4, fscrypt) from one run to the next.
func TestSystemdCapabilitiesRunSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("uid %d: the unit runs the server as root, whose capabilities this test narrows; run as root", os.Geteuid())
	}
	caps, nnp := unitCaps(t)
	wrap := []string{"setpriv", "--bounding-set=-all," + caps, "--inh-caps=-all"}
	if nnp {
		wrap = append(wrap, "--no-new-privs")
	}
	wrap = append(wrap, "--")
	agentDir, err := filepath.Abs("../e2e/testdata/memory")
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, wrap, []string{"RUNAGENT_DATA_DIR=", "RUNAGENT_STORE_URL=", "RUNAGENT_REDIS_URL=", "RUNAGENT_STORE_URL_FILE=", "RUNAGENT_REDIS_URL_FILE=", "RUNAGENT_MASTER_KEY_FILE="},
		"serve", agentDir, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--sandbox", "linux", "--memory", "on",
		"--auth", "none", "--local-registry", "off")
	run := s.URL + "/api/v1/agents/7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5c/run"
	if code, body := post(t, run, `{"entrypoint_tag":"remember","input_args":["k","kept"],"input_kwargs":{},"user_id":"alice","persistent_memory":true}`); code != 200 || !strings.Contains(body, `"success":true`) {
		t.Fatalf("remember with the unit's capabilities: %d %s", code, body)
	}
	if code, body := post(t, run, `{"entrypoint_tag":"recall","input_args":["k"],"input_kwargs":{},"user_id":"alice","persistent_memory":true}`); code != 200 || !strings.Contains(body, `kept`) {
		t.Errorf("recall with the unit's capabilities: %d %s, want the value remembered", code, body)
	}
}
