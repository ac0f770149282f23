// Command benchreport runs runagent's benchmarks side by side with their
// baselines and writes BENCHMARKS.md: each figure's median over several
// runs with min and max, its baseline measured in the same run, the ratio
// and the target (../shared/DESIGN.md), and the machine. Absolute times
// on shared machines drift; the ratios are what to compare.
//
// It is a development tool (make bench), not part of the runagent binary.
//
//	go run ./cmd/benchreport [-count 5] [-quick] [-o BENCHMARKS.md]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/perf/benchfmt"
)

func main() {
	var (
		count = flag.Int("count", 5, "runs of each benchmark; the report shows their median, min and max")
		quick = flag.Bool("quick", false, "fewer iterations and runs: a smoke test of the figures (CI), not numbers to quote")
		out   = flag.String("o", "BENCHMARKS.md", "where to write the report (- for stdout)")
		limit = flag.Duration("timeout", 25*time.Minute, "stop after this long in all")
	)
	flag.Parse()
	if *quick {
		*count = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	start := time.Now()
	res, logs := run(ctx, *count, *quick)
	report := render(res, *count, *quick, time.Since(start), logs)
	if *out == "-" {
		os.Stdout.Write(report)
		return
	}
	if err := os.WriteFile(*out, report, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "benchreport: wrote %s in %s\n", *out, time.Since(start).Round(time.Second))
}

// results maps "pkg BenchmarkName/sub" (no -GOMAXPROCS suffix) and unit to
// the values of every run.
type results map[string]map[string][]float64

var procsSuffix = regexp.MustCompile(`-\d+$`)

func key(pkg, bench string) string { return pkg + " " + bench }

// run runs each package's benchmarks once with -count, in package order.
func run(ctx context.Context, count int, quick bool) (results, []string) {
	res := results{}
	var notes []string
	for _, p := range packages {
		benchtime := p.benchtime
		if quick {
			benchtime = p.quick
		}
		args := []string{"test", "-run", "^$", "-bench", "^(" + strings.Join(p.benches, "|") + ")$",
			"-benchtime", benchtime, "-count", fmt.Sprint(count), "-benchmem", "-timeout", "10m", p.pkg}
		fmt.Fprintf(os.Stderr, "benchreport: go %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "go", args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, progress{new([]byte)}), &stderr
		err := cmd.Run()
		if err != nil {
			notes = append(notes, fmt.Sprintf("`%s`: %v %s", p.pkg, err, firstLine(stderr.String()+stdout.String())))
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if m := skipRE.FindStringSubmatch(line); m != nil {
				notes = append(notes, fmt.Sprintf("`%s`: %s", p.pkg, strings.TrimSpace(m[1])))
			}
		}
		parse(p.pkg, stdout.Bytes(), res)
	}
	return res, notes
}

// parse adds the results in out, `go test -bench` output of pkg, to res.
func parse(pkg string, out []byte, res results) {
	r := benchfmt.NewReader(bytes.NewReader(out), pkg)
	for r.Scan() {
		br, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error or a unit line: not a result
		}
		// benchfmt drops the "Benchmark" prefix; the GOMAXPROCS suffix goes too.
		name := "Benchmark" + procsSuffix.ReplaceAllString(br.Name.String(), "")
		k := key(pkg, name)
		if res[k] == nil {
			res[k] = map[string][]float64{}
		}
		for _, v := range br.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" { // a tidied value: keep the unit the benchmark wrote
				unit, val = v.OrigUnit, v.OrigValue
			}
			res[k][unit] = append(res[k][unit], val)
		}
	}
}

var skipRE = regexp.MustCompile(`^\s*\S+_test\.go:\d+: (.*(?:skip|Skip|needs|cannot).*)$`)

// progress echoes benchmark result lines as they complete.
type progress struct{ partial *[]byte }

func (p progress) Write(b []byte) (int, error) {
	*p.partial = append(*p.partial, b...)
	for {
		i := bytes.IndexByte(*p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		if l := string((*p.partial)[:i]); strings.HasPrefix(l, "Benchmark") && strings.Contains(l, "/op") {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		*p.partial = (*p.partial)[i+1:]
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// stats is the median, min and max of vs.
func stats(vs []float64) (med, lo, hi float64, ok bool) {
	if len(vs) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		med = s[len(s)/2]
	} else {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return med, s[0], s[len(s)-1], true
}

func (r results) get(m metric) (med, lo, hi float64, ok bool) {
	return stats(r[key(m.pkg, m.bench)][m.unit])
}

func render(res results, count int, quick bool, took time.Duration, notes []string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmarks\n\nGenerated by `make bench` (`go run ./cmd/benchreport`) on %s in %s.", time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	if quick {
		b.WriteString(" **Quick run** (`-quick`: one short run each): a smoke test, not figures to quote.")
	}
	fmt.Fprintf(&b, " Each figure is the median of %d runs, with min–max; its baseline ran in the same invocation. These machines are shared and noisy: compare ratios, not absolute times.\n\n", count)
	fmt.Fprintf(&b, "Machine: %s\n\n", machine())
	for _, sec := range sections {
		fmt.Fprintf(&b, "## %s\n\n| figure | measured (median, min–max) | baseline (median) | ratio | target | met |\n|---|---|---|---|---|---|\n", sec.title)
		for _, f := range sec.figures {
			b.WriteString(f.row(res))
		}
		b.WriteString("\n")
		if sec.note != "" {
			b.WriteString(sec.note + "\n\n")
		}
	}
	b.WriteString(findings + "\n")
	if len(notes) > 0 {
		b.WriteString("## Notes from this run\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func machine() string {
	kernel := "?"
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			cpu = string(m[1])
		}
	}
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s, %s/%s", runtime.NumCPU(), cpu, kernel, goVersion, runtime.GOOS, runtime.GOARCH)
}
