package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
		// Console lets the web console sign in through the issuer.
		Console *struct {
			ClientID string `json:"client_id"`
			// ClientSecretFile names the file holding a confidential
			// client's secret: the secret is never in this document.
			ClientSecretFile string   `json:"client_secret_file"`
			RedirectURL      string   `json:"redirect_url"`
			Scopes           []string `json:"scopes"`
			Name             string   `json:"name"`
		} `json:"console"`
	} `json:"issuers"`
}

// maxSecretFile bounds a console client's secret file.
const maxSecretFile = 4 << 10

// maxOIDCFile bounds the --oidc-config file.
const maxOIDCFile = 1 << 20

// parseOIDCConfig decodes an --oidc-config document strictly: unknown
// fields are errors (a misspelt "audience" must not go unnoticed). The
// oidc package validates the values. Console client secrets are not read
// (see decodeOIDCConfig).
func parseOIDCConfig(b []byte) (oidc.Config, error) {
	cfg, _, err := decodeOIDCConfig(b)
	return cfg, err
}

// decodeOIDCConfig is parseOIDCConfig, also returning the client secret
// file of each issuer whose console client names one, by issuer.
func decodeOIDCConfig(b []byte) (oidc.Config, map[string]string, error) {
	var f oidcFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return oidc.Config{}, nil, fmt.Errorf("oidc config: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return oidc.Config{}, nil, errors.New("oidc config: data after the JSON object")
	}
	if len(f.Issuers) == 0 {
		return oidc.Config{}, nil, errors.New(`oidc config: no issuers (want {"issuers": [{"issuer": "https://…", "audiences": ["…"]}]})`)
	}
	var cfg oidc.Config
	secretFiles := map[string]string{}
	for _, is := range f.Issuers {
		if is.LeewaySeconds < 0 || is.LeewaySeconds > oidc.MaxLeeway.Seconds() {
			return oidc.Config{}, nil, fmt.Errorf("oidc config: issuer %q: leeway_seconds must be from 0 to %d", is.Issuer, int(oidc.MaxLeeway.Seconds()))
		}
		ic := oidc.IssuerConfig{
			Issuer: is.Issuer, Audiences: is.Audiences, Algorithms: is.Algorithms,
			Leeway: time.Duration(is.LeewaySeconds * float64(time.Second)), JWKSURL: is.JWKSURL,
			ProjectClaim: is.ProjectClaim, RoleClaim: is.RoleClaim, Project: is.Project, Role: is.Role,
		}
		if c := is.Console; c != nil {
			ic.Console = &oidc.ConsoleClient{ClientID: c.ClientID, RedirectURL: c.RedirectURL, Scopes: c.Scopes, Name: c.Name}
			if c.ClientSecretFile != "" {
				secretFiles[is.Issuer] = c.ClientSecretFile
			}
		}
		cfg.Issuers = append(cfg.Issuers, ic)
	}
	return cfg, secretFiles, nil
}

// readSecretFile reads a console client's secret: the file's content
// without one trailing newline. Errors never quote the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
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
	cfg, secretFiles, err := decodeOIDCConfig(b)
	if err != nil {
		return oidc.Config{}, fmt.Errorf("--oidc-config %s: %w", path, err)
	}
	for i, ic := range cfg.Issuers {
		if file, ok := secretFiles[ic.Issuer]; ok {
			secret, err := readSecretFile(file)
			if err != nil {
				return oidc.Config{}, fmt.Errorf("--oidc-config %s: issuer %q: console client_secret_file: %w", path, ic.Issuer, err)
			}
			cfg.Issuers[i].Console.ClientSecret = secret
		}
	}
	return cfg, nil
}
