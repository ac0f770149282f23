package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// issuer is one configured issuer and the state of its key set.
type issuer struct {
	cfg    IssuerConfig
	algs   map[string]bool
	parser *jwt.Parser

	keys atomic.Pointer[keySet] // set once the first fetch succeeds; never unset

	mu      sync.Mutex    // guards the fields below
	pending chan struct{} // non-nil while a fetch runs; closed when it ends
	err     error         // why the last fetch failed
	retryAt time.Time     // no new fetch before this, after a failure
	stop    context.CancelFunc
}

// keySet is an issuer's cached JWKS. The library refreshes it in the
// background and on an unknown key ID.
type keySet struct {
	kf keyfunc.Keyfunc
	// cache is the library's in-memory copy of the JWKS; reading it never
	// fetches.
	cache jwkset.Storage
	// refetch allows a fetch for an unknown key ID. The library's own
	// limiter waits for its next token, which would let a token with a
	// made-up kid hold a request; this one refuses at once instead.
	refetch *rate.Limiter
}

// keys returns the issuer's key set, fetching it first if need be. Callers
// that arrive while a fetch runs wait for it (or for ctx); after a failure
// they are turned away until the retry interval has passed.
func (v *Verifier) keys(ctx context.Context, is *issuer) (*keySet, error) {
	if ks := is.keys.Load(); ks != nil {
		return ks, nil
	}
	is.mu.Lock()
	if ks := is.keys.Load(); ks != nil {
		is.mu.Unlock()
		return ks, nil
	}
	if is.pending == nil {
		if is.err != nil && time.Now().Before(is.retryAt) {
			err := is.err
			is.mu.Unlock()
			return nil, err
		}
		if !v.startFetch(is) {
			is.mu.Unlock()
			return nil, errClosed
		}
	}
	done := is.pending
	is.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ks := is.keys.Load(); ks != nil {
		return ks, nil
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	return nil, is.err
}

var errClosed = errors.New("verifier closed")

// startFetch starts fetching is's keys in the background and reports
// whether it did (not after Close).
//
// Preconditions: is.mu is held and no fetch is pending.
func (v *Verifier) startFetch(is *issuer) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return false
	}
	done := make(chan struct{})
	is.pending = done
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer close(done)
		ks, stop, err := v.fetch(is.cfg)
		is.mu.Lock()
		defer is.mu.Unlock()
		is.pending = nil
		if err != nil {
			is.err = err
			is.retryAt = time.Now().Add(v.cfg.RetryInterval)
			v.log.Warn("oidc: fetching issuer keys failed", "issuer", is.cfg.Issuer, "error", err,
				"retry_in", v.cfg.RetryInterval)
			return
		}
		is.err = nil
		is.stop = stop
		is.keys.Store(ks)
		v.log.Debug("oidc: issuer keys fetched", "issuer", is.cfg.Issuer)
	}()
	return true
}

// fetch discovers the JWKS URL of ic (unless configured), fetches the key
// set and returns it, with the function that stops its background refresh.
func (v *Verifier) fetch(ic IssuerConfig) (*keySet, context.CancelFunc, error) {
	jwksURL := ic.JWKSURL
	if jwksURL == "" {
		ctx, cancel := context.WithTimeout(v.base, v.cfg.HTTPTimeout)
		doc, err := v.discover(ctx, ic.Issuer)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		if doc.JWKSURI == "" {
			return nil, nil, errors.New("discovery: the document has no jwks_uri")
		}
		if err := checkURL(doc.JWKSURI); err != nil {
			return nil, nil, fmt.Errorf("discovery: jwks_uri: %w", err)
		}
		jwksURL = doc.JWKSURI
	}

	// life bounds the library's refresh goroutine; it ends on Close, or
	// here if the first fetch fails.
	life, stop := context.WithCancel(v.base)
	onRefreshError := func(_ context.Context, err error) {
		v.log.Warn("oidc: refreshing issuer keys failed; keeping the cached keys",
			"issuer", ic.Issuer, "jwks_url", jwksURL, "error", err)
	}
	store, err := jwkset.NewStorageFromHTTP(jwksURL, jwkset.HTTPClientStorageOptions{
		Client:              v.client,
		Ctx:                 life,
		HTTPTimeout:         v.cfg.HTTPTimeout,
		RefreshInterval:     v.cfg.RefreshInterval,
		RefreshErrorHandler: onRefreshError,
		// NoErrorReturnFirstHTTPReq stays false: a failed first fetch
		// fails this attempt, to be retried after RetryInterval, rather
		// than leaving an empty set that only refreshes on schedule.
	})
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("fetch jwks %s: %w", jwksURL, err)
	}
	if keys, err := store.KeyReadAll(life); err != nil || len(keys) == 0 {
		stop()
		return nil, nil, fmt.Errorf("jwks %s has no usable keys", jwksURL)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{jwksURL: store},
		// The wait bound is also the bound of the refetch itself.
		RateLimitWaitMax: v.cfg.HTTPTimeout,
		// Unlimited here: keySet.refetch decides, without waiting.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     life,
		Storage: client,
		// Keys marked for encryption never verify a signature; keys
		// without a "use" are common and allowed.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &keySet{
		kf:      kf,
		cache:   store,
		refetch: rate.NewLimiter(rate.Every(v.cfg.UnknownKeyRefreshInterval), 1),
	}, stop, nil
}

// keyfunc returns the jwt.Keyfunc that looks up the token's key, refusing
// anything but the public key types of the allowed algorithms (a JWKS
// should hold no symmetric key, and none is ever used).
func (ks *keySet) keyfunc(ctx context.Context) jwt.Keyfunc {
	lookup := ks.kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		if kid, ok := t.Header["kid"].(string); ok {
			_, err := ks.cache.KeyRead(ctx, kid)
			if errors.Is(err, jwkset.ErrKeyNotFound) && !ks.refetch.Allow() {
				return nil, fmt.Errorf("%w (refetch rate-limited)", jwkset.ErrKeyNotFound)
			}
		}
		key, err := lookup(t)
		if err != nil {
			return nil, err
		}
		if set, ok := key.(jwt.VerificationKeySet); ok {
			var public jwt.VerificationKeySet
			for _, k := range set.Keys {
				if isPublicKey(k) {
					public.Keys = append(public.Keys, k)
				}
			}
			return public, nil
		}
		if !isPublicKey(key) {
			return nil, errNotPublicKey
		}
		return key, nil
	}
}

var errNotPublicKey = errors.New("key is not an RSA, ECDSA or Ed25519 public key")

func isPublicKey(k any) bool {
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// discovery is what is read of an OpenID Connect discovery document.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// discover fetches the OpenID Connect discovery document of iss. The
// document's issuer must equal iss exactly (OpenID Connect Discovery 1.0,
// section 4.3), so a document cannot redirect trust to another issuer.
// The URLs in it are the caller's to check.
func (v *Verifier) discover(ctx context.Context, iss string) (discovery, error) {
	var doc discovery
	u := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return doc, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return doc, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return doc, fmt.Errorf("discovery: GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return doc, fmt.Errorf("discovery: read %s: %w", u, err)
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return doc, fmt.Errorf("discovery: decode %s: %w", u, err)
	}
	if doc.Issuer != iss {
		return doc, fmt.Errorf("discovery: %s names issuer %q, not %q", u, doc.Issuer, iss)
	}
	return doc, nil
}

// httpClient returns the client for discovery and JWKS requests: base (or
// a fresh one) with a timeout, at most three redirects that never leave
// https, and response bodies capped at maxBody bytes.
func httpClient(base *http.Client, timeout time.Duration, maxBody int64) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	if c.Timeout == 0 {
		c.Timeout = timeout
	}
	rt := c.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSHandshakeTimeout = timeout
		t.ResponseHeaderTimeout = timeout
		t.MaxResponseHeaderBytes = 64 << 10
		rt = t
	}
	c.Transport = cappedTransport{base: rt, max: maxBody}
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("refusing a redirect from https to " + req.URL.Scheme)
			}
			return nil
		}
	}
	return &c
}

// cappedTransport fails a response whose body is longer than max bytes.
type cappedTransport struct {
	base http.RoundTripper
	max  int64
}

func (t cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("response of %d bytes from %s exceeds the %d-byte limit", resp.ContentLength, req.URL.Redacted(), t.max)
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

var errBodyTooLarge = errors.New("response body exceeds the size limit")

type cappedBody struct {
	io.ReadCloser
	left int64 // bytes still allowed
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	// Read one byte past the limit to tell "exactly max" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), errBodyTooLarge
	}
	return n, err
}
