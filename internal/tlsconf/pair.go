package tlsconf

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// parsePair validates a certificate chain and its key, both PEM, and
// returns them ready to serve. The names are the files' names for errors.
// Each check has its own error so the operator learns which file is wrong
// and how: not PEM, the two files swapped, an encrypted key, a key of
// another certificate, a certificate outside its validity period.
func parsePair(certPEM, keyPEM []byte, certName, keyName string, now time.Time) (*tls.Certificate, error) {
	chain, err := parseChain(certPEM, "certificate file", certName)
	if err != nil {
		return nil, err
	}
	key, err := checkKey(keyPEM, keyName)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if i := keyOf(chain, key); i > 0 {
			return nil, fmt.Errorf("key file %q belongs to certificate %d of certificate file %q; the server's own certificate must come first, then its issuers", keyName, i+1, certName)
		}
		return nil, fmt.Errorf("key file %q does not belong to certificate file %q: %w", keyName, certName, err)
	}
	leaf := chain[0]
	cert.Leaf = leaf
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("certificate file %q (subject %q) expired on %s; renew it",
			certName, leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("certificate file %q (subject %q) is not valid before %s; check the system clock",
			certName, leaf.Subject.String(), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// parseChain returns the certificates of a PEM file, in file order (the
// leaf first for a server certificate). Other blocks are skipped as
// tls.X509KeyPair skips them. what and name say which file it is.
func parseChain(data []byte, what, name string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	var others []string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			others = append(others, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %q: certificate %d: %w", what, name, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) > 0 {
		return chain, nil
	}
	if slices.ContainsFunc(others, isKeyBlock) {
		return nil, fmt.Errorf("%s %q holds a private key, not a certificate; are the certificate and key files swapped?", what, name)
	}
	if len(others) > 0 {
		return nil, fmt.Errorf("%s %q holds no CERTIFICATE PEM block (found %s)", what, name, strings.Join(others, ", "))
	}
	return nil, fmt.Errorf("%s %q is not PEM: no \"-----BEGIN CERTIFICATE-----\" block found", what, name)
}

// keyOf returns the index of the certificate in chain whose public key is
// key's, or -1.
func keyOf(chain []*x509.Certificate, key crypto.PrivateKey) int {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return -1
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return -1
	}
	for i, c := range chain {
		if pub.Equal(c.PublicKey) {
			return i
		}
	}
	return -1
}

// checkKey finds the private key block the way tls.X509KeyPair does and
// parses it, so that a bad key is reported as such rather than as a
// mismatch.
func checkKey(data []byte, name string) (crypto.PrivateKey, error) {
	var others []string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if !isKeyBlock(b.Type) {
			others = append(others, b.Type)
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("key file %q holds an encrypted private key; the server cannot ask for a passphrase, so store it decrypted with restrictive permissions", name)
		}
		key, err := parseKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %s block: %w", name, b.Type, err)
		}
		return key, nil
	}
	if slices.Contains(others, "CERTIFICATE") {
		return nil, fmt.Errorf("key file %q holds a certificate, not a private key; are the certificate and key files swapped?", name)
	}
	if len(others) > 0 {
		return nil, fmt.Errorf("key file %q holds no private key PEM block (found %s)", name, strings.Join(others, ", "))
	}
	return nil, fmt.Errorf("key file %q is not PEM: no \"-----BEGIN PRIVATE KEY-----\" block found", name)
}

func isKeyBlock(typ string) bool {
	return typ == "PRIVATE KEY" || strings.HasSuffix(typ, " PRIVATE KEY")
}

// parseKey accepts the encodings tls.X509KeyPair accepts.
func parseKey(der []byte) (crypto.PrivateKey, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS #8, PKCS #1 or SEC 1 private key")
}

// expiryWarning returns a sentence for the operator if leaf expires within
// d of now, or "".
func expiryWarning(name string, leaf *x509.Certificate, now time.Time, d time.Duration) string {
	if leaf == nil || d <= 0 {
		return ""
	}
	left := leaf.NotAfter.Sub(now)
	if left >= d {
		return ""
	}
	var in string
	switch {
	case left <= 0:
		in = "has expired"
	case left >= 48*time.Hour:
		in = fmt.Sprintf("expires in %d days", int(left/(24*time.Hour)))
	default:
		in = "expires in " + left.Round(time.Minute).String()
	}
	return fmt.Sprintf("tls certificate file %q (subject %q) %s, on %s; renew it",
		name, leaf.Subject.String(), in, leaf.NotAfter.UTC().Format(time.RFC3339))
}
