package outbox

import (
	"crypto/x509"
	"time"

	"github.com/pocketbase/dbx"
)

// Claim is claim, for tests that stop a send between the claim and the delivery.
func Claim(db dbx.Builder, id string, now time.Time) (bool, error) { return claim(db, id, now) }

// SetRootCAs makes s trust pool for the SMTP server's certificate (a test's self-signed one).
func (s *Sender) SetRootCAs(pool *x509.CertPool) { s.rootCAs = pool }
