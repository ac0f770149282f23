package ratelimit

import (
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"strconv"
	"testing"
)

func BenchmarkMemoryAllow(b *testing.B) {
	b.Run("one key", func(b *testing.B) {
		m := NewMemory(MemoryOptions{})
		b.ReportAllocs()
		for b.Loop() {
			m.Allow(b.Context(), "key:k1", DefaultLimit)
		}
	})
	b.Run("10k keys", func(b *testing.B) {
		m := NewMemory(MemoryOptions{})
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = "ip:192.0.2." + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Allow(b.Context(), keys[i%len(keys)], DefaultLimit)
			i++
		}
	})
	b.Run("parallel 10k keys", func(b *testing.B) {
		m := NewMemory(MemoryOptions{})
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = "ip:192.0.2." + strconv.Itoa(i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.Allow(b.Context(), keys[i%len(keys)], DefaultLimit)
				i += 7
			}
		})
	})
	b.Run("full, new key each time", func(b *testing.B) {
		// The worst case: every request a new key into a full limiter.
		m := NewMemory(MemoryOptions{MaxKeys: 10_000})
		keys := make([]string, 100_000)
		for i := range keys {
			keys[i] = "ip:" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Allow(b.Context(), keys[i%len(keys)], DefaultLimit)
			i++
		}
	})
}

func BenchmarkRedisAllow(b *testing.B) {
	addr := redistest.Start(b)
	r := NewRedis(redistest.Client(b, addr), RedisOptions{})
	lim := Limit{Rate: 1 << 30, Period: 1 << 40} // always allowed: measure the round trip
	if _, err := r.Allow(b.Context(), "key:k1", lim); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Allow(b.Context(), "key:k1", lim); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Allow(b.Context(), "key:k1", lim); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkClientKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ClientKey("10.1.2.3:443", "203.0.113.9, 198.51.100.1, 10.9.9.9", testProxies)
	}
}
