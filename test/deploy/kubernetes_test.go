package deploy

import (
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of deploy/kubernetes.
type manifests struct {
	namespace  *corev1.Namespace
	secret     *corev1.Secret
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	claims     []*corev1.PersistentVolumeClaim
}

// loadManifests decodes every file of deploy/kubernetes strictly into
// its Kubernetes API type: a field the type does not have (a typo, a
// field at the wrong level), a kind or apiVersion other than those
// expected, or a file holding more than one object fails the test.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(repoFile("deploy/kubernetes/*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\n---") {
			t.Errorf("%s: one object per file, please", f)
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(b, &tm); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			m.namespace = &corev1.Namespace{}
			obj = m.namespace
		case "v1 Secret":
			m.secret = &corev1.Secret{}
			obj = m.secret
		case "apps/v1 Deployment":
			m.deployment = &appsv1.Deployment{}
			obj = m.deployment
		case "v1 Service":
			m.service = &corev1.Service{}
			obj = m.service
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			obj = m.pdb
		case "v1 PersistentVolumeClaim":
			pvc := &corev1.PersistentVolumeClaim{}
			m.claims = append(m.claims, pvc)
			obj = pvc
		default:
			t.Errorf("%s: unexpected object %s %s", f, tm.APIVersion, tm.Kind)
			continue
		}
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Errorf("%s does not decode strictly as %s %s: %v", f, tm.APIVersion, tm.Kind, err)
		}
	}
	for name, missing := range map[string]bool{"Namespace": m.namespace == nil, "Secret": m.secret == nil,
		"Deployment": m.deployment == nil, "Service": m.service == nil, "PodDisruptionBudget": m.pdb == nil} {
		if missing {
			t.Errorf("deploy/kubernetes has no %s", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// TestKubernetesManifests: the manifests decode strictly into the
// Kubernetes API types and hold together as a reviewer would check:
// selectors select the pods, probes and ports name what the container
// has, the secrets the pods read are the example Secret's keys, nothing
// secret is in args or plain env, the namespace is the same everywhere.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	ns := m.namespace.Name
	for kind, meta := range map[string]metav1.ObjectMeta{"Secret": m.secret.ObjectMeta, "Deployment": m.deployment.ObjectMeta,
		"Service": m.service.ObjectMeta, "PodDisruptionBudget": m.pdb.ObjectMeta} {
		if meta.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, want %q (namespace.yaml)", kind, meta.Name, meta.Namespace, ns)
		}
	}
	for _, c := range m.claims {
		if c.Namespace != ns {
			t.Errorf("PersistentVolumeClaim %s is in namespace %q, want %q (namespace.yaml)", c.Name, c.Namespace, ns)
		}
	}

	d := m.deployment
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment replicas = %v, want 3", d.Spec.Replicas)
	}
	selects := func(what string, sel *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() {
			t.Errorf("%s selector %v: %v (empty selects everything)", what, sel, err)
			return
		}
		if !s.Matches(podLabels) {
			t.Errorf("%s selector %s does not match the pod labels %v", what, s, podLabels)
		}
	}
	selects("Deployment", d.Spec.Selector)
	selects("PodDisruptionBudget", m.pdb.Spec.Selector)
	if sel := labels.SelectorFromSet(m.service.Spec.Selector); len(m.service.Spec.Selector) == 0 || !sel.Matches(podLabels) {
		t.Errorf("Service selector %v does not match the pod labels %v", m.service.Spec.Selector, podLabels)
	}
	if p := m.pdb.Spec; (p.MinAvailable == nil) == (p.MaxUnavailable == nil) {
		t.Errorf("PodDisruptionBudget: set one of minAvailable and maxUnavailable")
	} else if p.MaxUnavailable != nil && p.MaxUnavailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget maxUnavailable %s lets every replica go", p.MaxUnavailable)
	}

	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("the pod mounts a service account token; it needs none (automountServiceAccountToken: false)")
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
		t.Errorf("the pod shares the host's network, PID or IPC namespace; the sandbox needs none of them")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem should be true", c.Name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("container %s: resources want cpu and memory requests and a memory limit: %v", c.Name, c.Resources)
	}

	// Ports: the Service's target and the probes' ports are the
	// container's.
	portNamed := func(p intstr.IntOrString) bool {
		return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal)
		})
	}
	for _, sp := range m.service.Spec.Ports {
		if !portNamed(sp.TargetPort) {
			t.Errorf("Service port %s targets %s, which the container does not have", sp.Name, sp.TargetPort.String())
		}
	}
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	for _, name := range []string{"readiness", "liveness"} {
		if probes[name] == nil || probes[name].HTTPGet == nil {
			t.Errorf("container %s has no HTTP %s probe", c.Name, name)
		}
	}
	if c.ReadinessProbe != nil && c.LivenessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet != nil &&
		c.ReadinessProbe.HTTPGet.Path == c.LivenessProbe.HTTPGet.Path {
		t.Errorf("readiness and liveness probe the same URL %s: an outage of the store would restart every node", c.ReadinessProbe.HTTPGet.Path)
	}
	for name, p := range probes {
		if p != nil && p.HTTPGet != nil && !portNamed(p.HTTPGet.Port) {
			t.Errorf("%s probe port %s is not a port of the container", name, p.HTTPGet.Port.String())
		}
	}

	// Secrets: every key the pod reads is in the example Secret, and the
	// files the environment names are those the Secret's volume holds.
	has := func(key string) bool {
		_, a := m.secret.StringData[key]
		_, b := m.secret.Data[key]
		return a || b
	}
	secretFiles := map[string]bool{} // paths in the container
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.SecretName != m.secret.Name {
			t.Errorf("volume %s reads Secret %q, want %q (secret.example.yaml)", v.Name, v.Secret.SecretName, m.secret.Name)
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
			t.Errorf("volume %s: defaultMode %v lets group or others read the secrets (the master key file is refused then); want 0400", v.Name, v.Secret.DefaultMode)
		}
		var mount string
		for _, vm := range c.VolumeMounts {
			if vm.Name == v.Name {
				mount = vm.MountPath
				if !vm.ReadOnly {
					t.Errorf("secret volume %s is mounted writable", v.Name)
				}
			}
		}
		for _, it := range v.Secret.Items {
			if !has(it.Key) {
				t.Errorf("volume %s reads key %q, which the example Secret does not have", v.Name, it.Key)
			}
			secretFiles[path.Join(mount, it.Path)] = true
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != m.secret.Name || !has(ref.Key) {
				t.Errorf("env %s: secretKeyRef %s/%s is not a key of the example Secret %s", e.Name, ref.Name, ref.Key, m.secret.Name)
			}
		}
		if strings.HasSuffix(e.Name, "_FILE") && strings.HasPrefix(e.Name, "RUNAGENT_") && !secretFiles[e.Value] {
			t.Errorf("env %s names %s, which is no file of the Secret's volume (%v)", e.Name, e.Value, secretFiles)
		}
		if strings.Contains(e.Value, "://") {
			t.Errorf("env %s holds a URL in the manifest; URLs carry credentials: read it from the Secret", e.Name)
		}
	}
	for _, want := range []string{"RUNAGENT_STORE_URL_FILE", "RUNAGENT_REDIS_URL_FILE", "RUNAGENT_MASTER_KEY_FILE"} {
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == want }) {
			t.Errorf("the container does not set %s: the node would not share the store, Redis or the master key", want)
		}
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if strings.Contains(a, "://") || strings.Contains(strings.ToLower(a), "password") || strings.Contains(a, "master-key") {
			t.Errorf("argument %q: configuration on the command line shows in the process list; secrets come from the Secret", a)
		}
	}
}

// TestKubernetesArgsAndProbes: the container's arguments are a command
// line this binary accepts (run with --print-config, with the Secret's
// files stood in for by local ones), and its probes answer 200 from a
// running server: their paths are routes of this binary.
func TestKubernetesArgsAndProbes(t *testing.T) {
	m := loadManifests(t)
	c := m.deployment.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 {
		t.Errorf("command %v: the image's entrypoint is runagent; give args only", c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v, want serve and its flags", c.Args)
	}

	// Stand-ins for the Secret's files, in the shapes the server wants.
	dir := t.TempDir()
	stand := map[string]string{
		"RUNAGENT_STORE_URL_FILE":     "postgres://runagent@127.0.0.1:5432/runagent\n",
		"RUNAGENT_REDIS_URL_FILE":     "redis://127.0.0.1:6379/0\n",
		"RUNAGENT_MASTER_KEY_FILE":    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"RUNAGENT_BOOTSTRAP_KEY_FILE": "placeholder\n",
	}
	env := []string{"RUNAGENT_DATA_DIR=", "RUNAGENT_STORE_URL=", "RUNAGENT_REDIS_URL="}
	for _, e := range c.Env {
		v := e.Value
		if content, ok := stand[e.Name]; ok {
			v = filepath.Join(dir, e.Name)
			if err := os.WriteFile(v, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	cmd := exec.Command(binary, append(slices.Clone(c.Args), "--print-config")...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("runagent %s --print-config: %v\n%s", strings.Join(c.Args, " "), err, out)
	}
	for _, want := range []string{`"store": "postgres://runagent@127.0.0.1:5432/runagent"`, `"sandbox": "linux"`, `"memory_dir": "/var/lib/runagent-memory"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the effective configuration of the manifest's args lacks %s:\n%s", want, out)
		}
	}

	// A running server (SQLite, no sandbox: the probes ask nothing of
	// either) answers every probe path with 200.
	s := startServe(t, nil, []string{"RUNAGENT_DATA_DIR=", "RUNAGENT_STORE_URL=", "RUNAGENT_REDIS_URL=", "RUNAGENT_STORE_URL_FILE=", "RUNAGENT_REDIS_URL_FILE=", "RUNAGENT_MASTER_KEY_FILE="},
		"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--sandbox", "process", "--local-registry", "off")
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		u, err := url.Parse(p.HTTPGet.Path)
		if err != nil {
			t.Errorf("%s probe path %q: %v", name, p.HTTPGet.Path, err)
			continue
		}
		if code, body := get(t, s.URL+u.RequestURI()); code != 200 {
			t.Errorf("%s probe GET %s = %d %s, want 200", name, p.HTTPGet.Path, code, body)
		}
	}
	// And the liveness path is not the readiness check under another
	// name: it must not ask the store (see TestHealthProbes in
	// internal/api for the 503 side).
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil {
		if _, body := get(t, s.URL+c.LivenessProbe.HTTPGet.Path); !strings.Contains(body, `"alive"`) {
			t.Errorf("liveness probe answers %s, want the liveness form (status alive)", body)
		}
	}
}

// TestKubernetesMemoryShared: the API pods, which share one PostgreSQL
// store, keep persistent memory (--memory-dir) on a volume they all
// mount read-write: a PersistentVolumeClaim of the manifests with
// ReadWriteMany, mounted writable, outside the per-pod data directory.
// (A node on PostgreSQL without --memory-dir refuses to start.)
func TestKubernetesMemoryShared(t *testing.T) {
	m := loadManifests(t)
	pod := m.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	var dir, dataDir string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--memory-dir="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dataDir = v
		}
		if a == "--memory=off" {
			return // no persistent memory: nothing to share
		}
	}
	if dir == "" {
		t.Fatalf("the container's args %v set no --memory-dir: a node on PostgreSQL refuses to start without it", c.Args)
	}
	if dataDir != "" && (dir == dataDir || strings.HasPrefix(dir, dataDir+"/")) {
		t.Errorf("--memory-dir %s is inside the per-pod data directory %s", dir, dataDir)
	}
	var volume string
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == dir {
			volume = vm.Name
			if vm.ReadOnly {
				t.Errorf("the memory volume %s is mounted read-only", vm.Name)
			}
		}
	}
	if volume == "" {
		t.Fatalf("no volume is mounted at --memory-dir %s", dir)
	}
	var claim string
	for _, v := range pod.Volumes {
		if v.Name == volume {
			if v.PersistentVolumeClaim == nil {
				t.Fatalf("volume %s at --memory-dir is not a PersistentVolumeClaim: the pods would not share it", volume)
			}
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	i := slices.IndexFunc(m.claims, func(p *corev1.PersistentVolumeClaim) bool { return p.Name == claim })
	if i < 0 {
		t.Fatalf("the memory volume's claim %q is not among the manifests", claim)
	}
	if !slices.Contains(m.claims[i].Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("claim %s has access modes %v, want ReadWriteMany: every pod mounts it", claim, m.claims[i].Spec.AccessModes)
	}
}
