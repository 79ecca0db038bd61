package outbox_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// fakeSMTP is an SMTP server on 127.0.0.1 that keeps every message it accepts and can
// be told to refuse, hang or drop the connection at a step.
type fakeSMTP struct {
	Addr string
	Port int

	srv      *smtp.Server
	mu       sync.Mutex
	faults   []*fault
	received []received
	hang     chan struct{}
	user     string // when set, AUTH PLAIN with user/pass is offered and required
	pass     string
	implicit *tls.Config
}

// fault is what the server does at a step ("mail", "rcpt" or "data") instead of
// accepting, for its next `times` uses (-1: always).
type fault struct {
	step  string
	code  int
	msg   string
	hang  bool // block until the test ends: the client's timeout has to act
	drop  bool // data: keep the message, then close the connection without answering
	times int
}

// received is one accepted message.
type received struct {
	From      string
	To        []string
	Raw       []byte
	MessageID string
	TLS       bool // it came over an encrypted connection
}

type fakeOption func(*smtp.Server, *fakeSMTP)

func withTLS(cert tls.Certificate) fakeOption {
	return func(s *smtp.Server, _ *fakeSMTP) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
}

// withImplicitTLS serves TLS from the first byte (OPSPINE_SMTP_TLS=tls, port 465).
func withImplicitTLS(cert tls.Certificate) fakeOption {
	return func(_ *smtp.Server, f *fakeSMTP) { f.implicit = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

func withAuth(user, pass string) fakeOption {
	return func(_ *smtp.Server, f *fakeSMTP) { f.user, f.pass = user, pass }
}

func startFakeSMTP(t testing.TB, opts ...fakeOption) *fakeSMTP {
	t.Helper()
	f := &fakeSMTP{hang: make(chan struct{})}
	f.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &fakeSession{f: f, conn: c}, nil
	}))
	f.srv.Domain = "mx.test"
	f.srv.ReadTimeout = 10 * time.Second
	f.srv.WriteTimeout = 10 * time.Second
	f.srv.MaxMessageBytes = 50 << 20
	f.srv.ErrorLog = log.New(io.Discard, "", 0)
	for _, o := range opts {
		o(f.srv, f)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if f.implicit != nil {
		l = tls.NewListener(l, f.implicit)
	}
	f.Addr = l.Addr().String()
	f.Port = l.Addr().(*net.TCPAddr).Port
	go f.srv.Serve(l)
	t.Cleanup(func() {
		close(f.hang)
		f.srv.Close()
	})
	return f
}

// failNext makes the next `times` uses of step answer code msg (-1: every use).
func (f *fakeSMTP) failNext(step string, code int, msg string, times int) {
	f.add(&fault{step: step, code: code, msg: msg, times: times})
}

// hangAt makes the next use of step hang until the test ends.
func (f *fakeSMTP) hangAt(step string) { f.add(&fault{step: step, hang: true, times: 1}) }

// dropAfterData makes the next message be kept and its connection closed unanswered.
func (f *fakeSMTP) dropAfterData() { f.add(&fault{step: "data", drop: true, times: 1}) }

func (f *fakeSMTP) add(ft *fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, ft)
}

func (f *fakeSMTP) take(step string) *fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, ft := range f.faults {
		if ft.step != step {
			continue
		}
		if ft.times > 0 {
			ft.times--
			if ft.times == 0 {
				f.faults = append(f.faults[:i], f.faults[i+1:]...)
			}
		}
		return ft
	}
	return nil
}

// messages returns a copy of what the server accepted so far.
func (f *fakeSMTP) messages() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.received...)
}

func (f *fakeSMTP) keep(from string, to []string, raw []byte, encrypted bool) int {
	id := ""
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		id = m.Header.Get("Message-Id")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received = append(f.received, received{From: from, To: to, Raw: raw, MessageID: id, TLS: encrypted})
	return len(f.received)
}

type fakeSession struct {
	f    *fakeSMTP
	conn *smtp.Conn
	from string
	to   []string
	auth bool
}

func (s *fakeSession) apply(ft *fault) error {
	if ft.hang {
		<-s.f.hang
		return &smtp.SMTPError{Code: 421, Message: "test over"}
	}
	return &smtp.SMTPError{Code: ft.code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: ft.msg}
}

func (s *fakeSession) AuthMechanisms() []string {
	if s.f.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.f.user || password != s.f.pass {
			return smtp.ErrAuthFailed
		}
		s.auth = true
		return nil
	}), nil
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.f.user != "" && !s.auth {
		return smtp.ErrAuthRequired
	}
	if ft := s.f.take("mail"); ft != nil {
		return s.apply(ft)
	}
	s.from = from
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ft := s.f.take("rcpt"); ft != nil {
		return s.apply(ft)
	}
	s.to = append(s.to, to)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, encrypted := s.conn.TLSConnectionState()
	if ft := s.f.take("data"); ft != nil {
		if ft.drop {
			s.f.keep(s.from, s.to, raw, encrypted)
			return s.conn.Conn().Close()
		}
		return s.apply(ft)
	}
	n := s.f.keep(s.from, s.to, raw, encrypted)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("OK: queued as Q%04d", n)}
}

func (s *fakeSession) Reset()        { s.from, s.to = "", nil }
func (s *fakeSession) Logout() error { return nil }

// selfSignedCert is a certificate for 127.0.0.1 and the pool that trusts it.
func selfSignedCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
