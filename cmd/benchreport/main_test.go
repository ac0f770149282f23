package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/runagent/runagent/internal/audit
BenchmarkAppendConcurrent/writers=32-2   	   30000	     33000 ns/op	     30303 records/s	 16.0 records/commit
BenchmarkAppendConcurrent/writers=32-2   	   30000	     34000 ns/op	     29411 records/s	 16.0 records/commit
BenchmarkAppendConcurrent/writers=32-2   	   30000	     31000 ns/op	     32258 records/s	 16.0 records/commit
BenchmarkAppendSerial-2                  	    3000	    350000 ns/op	      2857 records/s
    bench_test.go:12: this host cannot run the thing (skipped)
PASS
`

// TestParseAndReport: results are keyed by package and full benchmark
// name, units as the benchmark wrote them; a figure shows the median with
// min–max, its baseline, the ratio and whether the target is met.
func TestParseAndReport(t *testing.T) {
	res := results{}
	parse("./internal/audit", []byte(sample), res)
	m := metric{"./internal/audit", "BenchmarkAppendConcurrent/writers=32", "records/s"}
	med, lo, hi, ok := res.get(m)
	if !ok || med != 30303 || lo != 29411 || hi != 32258 {
		t.Fatalf("get = %v %v %v %v", med, lo, hi, ok)
	}
	if v, _, _, ok := res.get(metric{"./internal/audit", "BenchmarkAppendSerial", "ns/op"}); !ok || v != 350000 {
		t.Errorf("serial ns/op = %v, %v", v, ok)
	}
	f := figure{name: "appends", m: m, base: &metric{"./internal/audit", "BenchmarkAppendSerial", "records/s"}, show: perSec, ratio: times,
		target: "≥ 5,000 records/s", met: func(m, _ float64) bool { return m >= 5000 }}
	row := f.row(res)
	for _, want := range []string{"30,303/s (29,411/s–32,258/s)", "2,857/s", "10.61×", "| yes |"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	missing := figure{name: "absent", m: metric{"./x", "BenchmarkNone", "ns/op"}, show: dur, target: "t", met: func(float64, float64) bool { return true }}
	if row := missing.row(res); !strings.Contains(row, "| absent | — | — | — | t | — |") {
		t.Errorf("a figure without results: %q", row)
	}
	if med, _, _, _ := stats([]float64{4, 1, 3, 2}); med != 2.5 {
		t.Errorf("median of an even count = %v", med)
	}
}

// FuzzParse: no output of go test makes parse panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("BenchmarkX-2 1 NaN ns/op\nBenchmark 1\nBenchmarkY-\t2\t3 x/y z\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		parse("p", out, results{})
	})
}
