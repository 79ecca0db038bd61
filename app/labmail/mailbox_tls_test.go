package labmail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/opspine/opspine/app/labmail"
	"github.com/opspine/opspine/app/testkit"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imap.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestPollOverImplicitTLS: the default (TLS on) reads a mailbox over TLS, and refuses a
// server whose certificate it does not trust.
func TestPollOverImplicitTLS(t *testing.T) {
	app := testkit.NewApp(t)
	cert, pool := selfSigned(t)
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(imapUser, imapPass)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		Logger: testkit.QuietLogger{},
	})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	raw, id := mimeMessage(labFrom, "tls", "x", "utf-8", pdfPart("a.pdf", reportPDF(t, "CoA", passRows("B-261122-001"))))
	if _, err := user.Append("INBOX", bytesLiteral(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	makeBatch(t, app, "B-261122-001")

	p := &labmail.Poller{App: app, Now: func() time.Time { return t0 },
		IMAP: labmail.IMAP{Addr: ln.Addr().String(), Username: imapUser, Password: imapPass, TLS: true}}
	if _, err := p.Poll(context.Background()); err == nil {
		t.Fatal("a certificate nobody trusts was accepted")
	}
	p.IMAP.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if rep, err := p.Poll(context.Background()); err != nil || rep.Processed != 1 {
		t.Fatalf("poll over TLS: %v (%s)", err, rep.Summary())
	}
	if emailByMessageID(t, app, id).GetString("state") != labmail.StateProcessed {
		t.Error("the email read over TLS was not processed")
	}
}

// literal is a message to append straight to the in-memory mailbox.
type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return l.Reader.Size() }

func bytesLiteral(b []byte) imap.LiteralReader { return literal{bytes.NewReader(b)} }
