package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/runagent/runagent/internal/auth/oidc"
)

// oidcFile is the JSON form of the --oidc-config file.
type oidcFile struct {
	Issuers []struct {
		Issuer        string   `json:"issuer"`
		Audiences     []string `json:"audiences"`
		Algorithms    []string `json:"algorithms"`
		LeewaySeconds float64  `json:"leeway_seconds"`
		JWKSURL       string   `json:"jwks_url"`
		ProjectClaim  string   `json:"project_claim"`
		RoleClaim     string   `json:"role_claim"`
		Project       string   `json:"project"`
		Role          string   `json:"role"`
	} `json:"issuers"`
}

// maxOIDCFile bounds the --oidc-config file.
const maxOIDCFile = 1 << 20

// parseOIDCConfig decodes an --oidc-config document strictly: unknown
// fields are errors (a misspelt "audience" must not go unnoticed). The
// oidc package validates the values.
func parseOIDCConfig(b []byte) (oidc.Config, error) {
	var f oidcFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return oidc.Config{}, fmt.Errorf("oidc config: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return oidc.Config{}, errors.New("oidc config: data after the JSON object")
	}
	if len(f.Issuers) == 0 {
		return oidc.Config{}, errors.New(`oidc config: no issuers (want {"issuers": [{"issuer": "https://…", "audiences": ["…"]}]})`)
	}
	var cfg oidc.Config
	for _, is := range f.Issuers {
		if is.LeewaySeconds < 0 || is.LeewaySeconds > oidc.MaxLeeway.Seconds() {
			return oidc.Config{}, fmt.Errorf("oidc config: issuer %q: leeway_seconds must be from 0 to %d", is.Issuer, int(oidc.MaxLeeway.Seconds()))
		}
		cfg.Issuers = append(cfg.Issuers, oidc.IssuerConfig{
			Issuer: is.Issuer, Audiences: is.Audiences, Algorithms: is.Algorithms,
			Leeway: time.Duration(is.LeewaySeconds * float64(time.Second)), JWKSURL: is.JWKSURL,
			ProjectClaim: is.ProjectClaim, RoleClaim: is.RoleClaim, Project: is.Project, Role: is.Role,
		})
	}
	return cfg, nil
}

// readOIDCConfig reads and parses the file at path.
func readOIDCConfig(path string) (oidc.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return oidc.Config{}, fmt.Errorf("--oidc-config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOIDCFile+1))
	if err != nil {
		return oidc.Config{}, fmt.Errorf("--oidc-config: %w", err)
	}
	if len(b) > maxOIDCFile {
		return oidc.Config{}, fmt.Errorf("--oidc-config: %s is larger than %d bytes", path, maxOIDCFile)
	}
	cfg, err := parseOIDCConfig(b)
	if err != nil {
		return oidc.Config{}, fmt.Errorf("--oidc-config %s: %w", path, err)
	}
	return cfg, nil
}
