package schema

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestCacheHit(t *testing.T) {
	c := NewCache(1 << 20)
	raw := []byte(`{"kwargs":{"required":["message"]}}`)
	first, err := c.Compile(raw)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	again, err := c.Compile([]byte(string(raw))) // same bytes, another slice
	if err != nil {
		t.Fatalf("Compile again: %v", err)
	}
	if first != again {
		t.Error("second Compile of the same bytes compiled again")
	}
	if c.misses != 1 || c.Len() != 1 {
		t.Errorf("misses %d, len %d; want 1, 1", c.misses, c.Len())
	}
	if other, _ := c.Compile([]byte(`{"kwargs":{"required":["other"]}}`)); other == first {
		t.Error("different bytes gave the same schema")
	}
	if c.misses != 2 {
		t.Errorf("misses %d, want 2", c.misses)
	}
}

func TestCacheKeepsErrors(t *testing.T) {
	c := NewCache(1 << 20)
	raw := []byte(`{"kwargs":{"$ref":"https://example.com/"}}`)
	_, err1 := c.Compile(raw)
	_, err2 := c.Compile(raw)
	if err1 == nil || err1 != err2 {
		t.Errorf("errors %v, %v; want the same error twice", err1, err2)
	}
	if _, ok := errors.AsType[*Error](err1); !ok {
		t.Errorf("error %T, want *Error", err1)
	}
	if c.misses != 1 {
		t.Errorf("misses %d, want 1", c.misses)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	doc := func(i int) []byte { return fmt.Appendf(nil, `{"kwargs":{"maxProperties":%d}}`, i) }
	c := NewCache(2 * len(doc(1))) // room for two
	c.Compile(doc(1))
	c.Compile(doc(2))
	c.Compile(doc(1)) // 1 is now the most recent
	c.Compile(doc(3)) // evicts 2
	if c.Len() != 2 {
		t.Fatalf("len %d, want 2", c.Len())
	}
	misses := c.misses
	c.Compile(doc(1))
	if c.misses != misses {
		t.Error("recently used schema was evicted")
	}
	c.Compile(doc(2))
	if c.misses != misses+1 {
		t.Error("least recently used schema was kept")
	}
}

// TestCacheConcurrent: many goroutines compiling and validating the same
// and different schemas at once (run with -race) get consistent answers,
// and each schema is compiled once while it stays cached.
func TestCacheKeepsOneOverBudget(t *testing.T) {
	c := NewCache(1)
	raw := []byte(`{"kwargs":{"type":"object"}}`)
	first, _ := c.Compile(raw)
	again, _ := c.Compile(raw)
	if first == nil || first != again || c.Len() != 1 {
		t.Errorf("a schema larger than the cache was not kept: len %d", c.Len())
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(1 << 20)
	const schemas, workers, rounds = 4, 16, 50
	doc := func(i int) []byte {
		return fmt.Appendf(nil, `{"kwargs":{"type":"object","properties":{"n":{"type":"integer","maximum":%d}}}}`, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				i := (w + r) % schemas
				in, err := c.Compile(doc(i))
				if err != nil {
					errs <- err
					return
				}
				if err := in.Validate(nil, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
					errs <- fmt.Errorf("schema %d: valid input refused: %w", i, err)
				}
				if err := in.Validate(nil, fmt.Appendf(nil, `{"n":%d}`, i+1)); err == nil {
					errs <- fmt.Errorf("schema %d: input over the maximum accepted", i)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.misses != schemas {
		t.Errorf("compiled %d times, want %d", c.misses, schemas)
	}
}

func BenchmarkValidate(b *testing.B) {
	in := MustCompile(b, `{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string","minLength":1,"maxLength":4000},"history":{"type":"array","maxItems":50,"items":{"type":"object","properties":{"role":{"enum":["user","assistant"]},"content":{"type":"string"}}}}},"additionalProperties":false},"args":{"maxItems":0}}`)
	kwargs := []byte(`{"message":"hello there","history":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`)
	for b.Loop() {
		if err := in.Validate(nil, kwargs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheCompileHit(b *testing.B) {
	c := NewCache(1 << 20)
	raw := []byte(`{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string"}}}}`)
	for b.Loop() {
		if _, err := c.Compile(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	raw := []byte(`{"kwargs":{"type":"object","required":["message"],"properties":{"message":{"type":"string","minLength":1,"maxLength":4000},"history":{"type":"array","maxItems":50,"items":{"type":"object","properties":{"role":{"enum":["user","assistant"]},"content":{"type":"string"}}}}},"additionalProperties":false},"args":{"maxItems":0}}`)
	for b.Loop() {
		if _, err := Compile(raw); err != nil {
			b.Fatal(err)
		}
	}
}
