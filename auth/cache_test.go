package auth

import (
	"crypto/sha256"
	"sync/atomic"
	"testing"
	"time"
)

// counting is a hash that counts its checks.
type counting struct {
	token string
	n     *atomic.Int64
}

func (c counting) verify(token string) int {
	c.n.Add(1)
	if token == c.token {
		return 1
	}
	return 0
}

// A verified hashed token is checked once per CacheTTL; unknown tokens are checked against every
// entry every time and never remembered; the cache holds digests, not tokens.
func TestIdentifyCache(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	ts := newTokens([]entry{
		{Identity: Identity{Name: "a", Role: Read}, hash: counting{"tok_a", &n}},
		{Identity: Identity{Name: "b", Role: Admin}, hash: counting{"tok_b", &n}},
		{Identity: Identity{Name: "c", Role: Read}, digest: sha256.Sum256([]byte("tok_c"))},
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts.now = func() time.Time { return now }

	for range 3 {
		if id, ok := ts.Identify("tok_b"); !ok || id.Name != "b" {
			t.Fatalf("%+v %v", id, ok)
		}
	}
	if n.Load() != 2 { // one check of every hash, then the cache
		t.Fatalf("%d hash checks for three requests", n.Load())
	}
	for range 3 {
		if _, ok := ts.Identify("tok_guess"); ok {
			t.Fatal("a guess matched")
		}
	}
	if n.Load() != 2+3*2 {
		t.Fatalf("%d hash checks: unknown tokens must be checked against every hash each time", n.Load())
	}
	if len(ts.cache) != 1 {
		t.Fatalf("cache holds %d entries", len(ts.cache))
	}
	for k := range ts.cache {
		if k != sha256.Sum256([]byte("tok_b")) {
			t.Fatal("the cache is not keyed by the token's digest")
		}
	}
	now = now.Add(CacheTTL)
	if _, ok := ts.Identify("tok_b"); !ok || n.Load() != 2+3*2+2 {
		t.Fatalf("after the TTL: %d checks", n.Load())
	}
	// The cache stays bounded whatever is remembered.
	for i := range cacheMax + 10 {
		ts.remember(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), Identity{Name: "x"})
	}
	if len(ts.cache) > cacheMax {
		t.Fatalf("cache grew to %d", len(ts.cache))
	}
}
