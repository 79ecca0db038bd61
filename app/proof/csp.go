package proof

import (
	"crypto/rand"
	"encoding/base64"
)

// NewNonce returns a fresh CSP nonce: 128 random bits in URL-safe base64 (which CSP
// accepts, and which needs no escaping in an HTML attribute). Every response gets its own.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (it panics if the OS cannot supply)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ContentSecurityPolicy is the policy of every proof page: nothing loads unless listed,
// styles and scripts only inline with this response's nonce, images only from here or
// data: URLs, no forms, no framing, no <base>.
func ContentSecurityPolicy(nonce string) string {
	n := "'nonce-" + nonce + "'"
	return "default-src 'none'; style-src " + n + "; script-src " + n +
		"; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}
