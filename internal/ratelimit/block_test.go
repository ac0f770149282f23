package ratelimit

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/ratelimit/redistest"
)

// blocks is what MemoryBlocks and RedisBlocks both do.
type blocks interface {
	Check(ctx context.Context, client string) (time.Duration, error)
	Strike(ctx context.Context, client string) (bool, error)
	List(ctx context.Context, after *Block, limit int) ([]Block, error)
	Lift(ctx context.Context, client string) (bool, error)
}

// blockBackends make two views of one set of blocks, as two nodes see
// them: the same MemoryBlocks twice (one node), or two RedisBlocks with
// their own clients on one redis-server.
var blockBackends = []struct {
	name string
	new  func(t *testing.T, p BlockPolicy, clk *fakeClock) (a, b blocks)
}{
	{"memory", func(t *testing.T, p BlockPolicy, clk *fakeClock) (blocks, blocks) {
		m := NewMemoryBlocks(p, clk.Now)
		return m, m
	}},
	{"redis", func(t *testing.T, p BlockPolicy, clk *fakeClock) (blocks, blocks) {
		addr := redistest.Start(t)
		o := RedisBlocksOptions{Now: clk.Now, minTTL: time.Hour.Milliseconds()}
		return NewRedisBlocks(redistest.Client(t, addr), p, o), NewRedisBlocks(redistest.Client(t, addr), p, o)
	}},
}

func mustStrike(t *testing.T, b blocks, client string) bool {
	t.Helper()
	blocked, err := b.Strike(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	return blocked
}

func mustCheck(t *testing.T, b blocks, client string) time.Duration {
	t.Helper()
	left, err := b.Check(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// TestBlocks: strikes on either node count together; the block holds on
// both, for its duration, and a lift on either ends it on both.
func TestBlocks(t *testing.T) {
	p := BlockPolicy{After: 3, Window: time.Minute, For: 10 * time.Minute}
	for _, be := range blockBackends {
		t.Run(be.name, func(t *testing.T) {
			clk := newFakeClock()
			n1, n2 := be.new(t, p, clk)
			const c = "ip:192.0.2.7"
			if mustStrike(t, n1, c) || mustStrike(t, n2, c) {
				t.Fatal("blocked after 2 strikes, want after 3")
			}
			if left := mustCheck(t, n2, c); left != 0 {
				t.Fatalf("check after 2 strikes: got %v left, want not blocked", left)
			}
			if !mustStrike(t, n1, c) {
				t.Fatal("third strike (node 1) did not block")
			}
			clk.Advance(time.Minute)
			if left := mustCheck(t, n2, c); left != 9*time.Minute {
				t.Fatalf("node 2, a minute into the block: got %v left, want 9m0s", left)
			}
			if left := mustCheck(t, n1, "ip:192.0.2.8"); left != 0 {
				t.Fatalf("another client: got %v left, want not blocked", left)
			}
			list, err := n2.List(t.Context(), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := []Block{{Client: c, Until: clk.Now().Add(9 * time.Minute).UTC()}}
			if d := cmp.Diff(want, list); d != "" {
				t.Fatalf("node 2's list (-want +got):\n%s", d)
			}
			lifted, err := n2.Lift(t.Context(), c)
			if err != nil || !lifted {
				t.Fatalf("lift on node 2: got %v, %v; want true", lifted, err)
			}
			if left := mustCheck(t, n1, c); left != 0 {
				t.Fatalf("node 1 after the lift on node 2: got %v left, want not blocked", left)
			}
			if lifted, err := n1.Lift(t.Context(), c); err != nil || lifted {
				t.Fatalf("second lift: got %v, %v; want false", lifted, err)
			}
			// The lift forgot the strikes too: it takes 3 again.
			if mustStrike(t, n1, c) || mustStrike(t, n1, c) {
				t.Fatal("blocked again within 2 strikes after a lift")
			}
			list, err = n1.List(t.Context(), nil, 0)
			if err != nil || len(list) != 0 {
				t.Fatalf("list after the lift: got %v, %v; want none", list, err)
			}
		})
	}
}

// TestBlocksExpire: strikes older than the window do not count, and a
// block ends on its own after For.
func TestBlocksExpire(t *testing.T) {
	p := BlockPolicy{After: 2, Window: time.Minute, For: 5 * time.Minute}
	for _, be := range blockBackends {
		t.Run(be.name, func(t *testing.T) {
			clk := newFakeClock()
			n1, n2 := be.new(t, p, clk)
			const c = "key:k1"
			mustStrike(t, n1, c)
			clk.Advance(time.Minute) // exactly a window later: the first no longer counts
			if mustStrike(t, n2, c) {
				t.Fatal("a strike a whole window after the first blocked")
			}
			clk.Advance(59 * time.Second)
			if !mustStrike(t, n1, c) {
				t.Fatal("two strikes within the window did not block")
			}
			clk.Advance(5*time.Minute - time.Microsecond)
			if left := mustCheck(t, n2, c); left != time.Microsecond {
				t.Fatalf("just before the end: got %v left, want 1µs", left)
			}
			clk.Advance(time.Microsecond)
			if left := mustCheck(t, n2, c); left != 0 {
				t.Fatalf("at the end: got %v left, want not blocked", left)
			}
			if list, err := n1.List(t.Context(), nil, 0); err != nil || len(list) != 0 {
				t.Fatalf("list after the end: got %v, %v; want none", list, err)
			}
			if lifted, err := n1.Lift(t.Context(), c); err != nil || lifted {
				t.Fatalf("lift of an ended block: got %v, %v; want false", lifted, err)
			}
		})
	}
}

// TestBlocksDisabled: a negative After never blocks.
func TestBlocksDisabled(t *testing.T) {
	for _, be := range blockBackends {
		t.Run(be.name, func(t *testing.T) {
			n1, n2 := be.new(t, BlockPolicy{After: -1}, newFakeClock())
			for i := range 50 {
				if mustStrike(t, n1, "ip:192.0.2.1") {
					t.Fatalf("strike %d blocked with blocking off", i)
				}
			}
			if left := mustCheck(t, n2, "ip:192.0.2.1"); left != 0 {
				t.Fatalf("got %v left with blocking off", left)
			}
		})
	}
}

// TestBlocksListOrder: soonest to end first.
func TestBlocksListOrder(t *testing.T) {
	p := BlockPolicy{After: 1, Window: time.Minute, For: time.Hour}
	for _, be := range blockBackends {
		t.Run(be.name, func(t *testing.T) {
			clk := newFakeClock()
			n1, n2 := be.new(t, p, clk)
			var want []Block
			for i := range 3 {
				c := "ip:192.0.2." + strconv.Itoa(10-i)
				if !mustStrike(t, []blocks{n1, n2}[i%2], c) {
					t.Fatalf("%s not blocked", c)
				}
				want = append(want, Block{Client: c, Until: clk.Now().Add(time.Hour).UTC()})
				clk.Advance(time.Second)
			}
			got, err := n2.List(t.Context(), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("list (-want +got):\n%s", d)
			}
		})
	}
}

// TestRedisBlocksError: with Redis gone every method returns an error,
// never a verdict.
func TestRedisBlocksError(t *testing.T) {
	addr := redistest.Start(t)
	c := redistest.Client(t, addr)
	b := NewRedisBlocks(c, BlockPolicy{}, RedisBlocksOptions{})
	c.Close()
	if _, err := b.Check(t.Context(), "ip:192.0.2.1"); err == nil {
		t.Error("check: got no error from a closed client")
	}
	if _, err := b.Strike(t.Context(), "ip:192.0.2.1"); err == nil {
		t.Error("strike: got no error from a closed client")
	}
	if _, err := b.List(t.Context(), nil, 0); err == nil {
		t.Error("list: got no error from a closed client")
	}
	if _, err := b.Lift(t.Context(), "ip:192.0.2.1"); err == nil {
		t.Error("lift: got no error from a closed client")
	}
}

func FuzzDecodeBlocks(f *testing.F) {
	f.Add("ip:192.0.2.1", "1893553445000000", "key:k", "1")
	f.Add("", "", "", "")
	f.Add("a", "-9223372036854775808", "b", "x")
	f.Add("oidc:https://i#s", "9223372036854775807", "c", "99999999999999999999")
	f.Fuzz(func(t *testing.T, c1, u1, c2, u2 string) {
		for _, in := range [][]string{{c1, u1, c2, u2}, {c1, u1, c2}, {c1}, nil} {
			bs, err := decodeBlocks(in)
			if err != nil {
				continue
			}
			if len(bs)*2 != len(in) {
				t.Fatalf("decodeBlocks(%q) = %d blocks", in, len(bs))
			}
			for i, b := range bs {
				if b.Client != in[2*i] || b.Client == "" {
					t.Fatalf("decodeBlocks(%q): block %d is %q", in, i, b.Client)
				}
				if want, _ := strconv.ParseInt(in[2*i+1], 10, 64); b.Until.UnixMicro() != want {
					t.Fatalf("decodeBlocks(%q): block %d until %d µs, want %d", in, i, b.Until.UnixMicro(), want)
				}
			}
		}
	})
}

// TestBlocksPaged: List pages through the blocks in the order of the
// whole list, soonest to end first and then by client byte by byte
// (blocks that end at one instant included), from any block as the
// cursor, also one lifted since; each page holds at most its limit.
func TestBlocksPaged(t *testing.T) {
	p := BlockPolicy{After: 1, Window: time.Minute, For: time.Hour}
	for _, be := range blockBackends {
		t.Run(be.name, func(t *testing.T) {
			clk := newFakeClock()
			n1, n2 := be.new(t, p, clk)
			// Three instants, several clients at each, struck out of order.
			for _, group := range [][]string{
				{"ip:192.0.2.9", "key:Zed", "ip:192.0.2.10", "key:é", "key:a"},
				{"ip:198.51.100.1"},
				{"oidc:https://issuer#b", "oidc:https://issuer#a", "ip:2001:db8::/64"},
			} {
				for _, c := range group {
					mustStrike(t, n1, c)
				}
				clk.Advance(time.Second)
			}
			all, err := n2.List(t.Context(), nil, 0)
			if err != nil || len(all) != 9 {
				t.Fatalf("List(all) = %d blocks, %v; want 9", len(all), err)
			}
			want := slices.Clone(all)
			sortBlocks(want)
			if d := cmp.Diff(want, all); d != "" {
				t.Fatalf("List(all) is not in order (-sorted +got):\n%s", d)
			}
			for _, limit := range []int{1, 2, 4, 9, 10} {
				var got []Block
				var after *Block
				for range 20 {
					page, err := n2.List(t.Context(), after, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > limit {
						t.Fatalf("limit %d: a page of %d", limit, len(page))
					}
					got = append(got, page...)
					if len(page) < limit {
						break
					}
					after = &page[len(page)-1]
				}
				if d := cmp.Diff(all, got); d != "" {
					t.Errorf("limit %d: pages differ from the whole list (-all +paged):\n%s", limit, d)
				}
			}
			// From a block lifted since: the page starts after its place.
			if _, err := n1.Lift(t.Context(), all[2].Client); err != nil {
				t.Fatal(err)
			}
			page, err := n2.List(t.Context(), &all[2], 3)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(all[3:6], page); d != "" {
				t.Errorf("after a lifted block (-want +got):\n%s", d)
			}
		})
	}
}
