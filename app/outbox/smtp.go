package outbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"

	"github.com/opspine/opspine/app/config"
)

// fate is what a failed delivery means for the email.
type fate int

const (
	// retryLater: the server did not take the message (4xx, or the connection failed
	// before the end of the data); another attempt is safe.
	retryLater fate = iota
	// rejected: the server refused the message for good (5xx); another attempt would
	// be refused too.
	rejected
	// unknownFate: the whole message, its final "." included, was handed over and no
	// answer came; the server may have accepted it, so it is never sent again by itself.
	unknownFate
)

// deliveryError is a failed delivery with what it means and whether the connection
// can carry the next email.
type deliveryError struct {
	fate   fate
	step   string // greeting, STARTTLS, AUTH, MAIL FROM, RCPT TO <x>, DATA, end of data
	err    error
	broken bool
}

func (e *deliveryError) Error() string { return e.step + ": " + e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

// smtpFailure sorts an error at step: a reply code decides between retryLater (4xx)
// and rejected (5xx); anything else (network, timeout, TLS) is retryLater on a broken
// connection.
func smtpFailure(step string, err error) *deliveryError {
	var te *textproto.Error
	if errors.As(err, &te) {
		f := retryLater
		if te.Code >= 500 {
			f = rejected
		}
		return &deliveryError{fate: f, step: step, err: err, broken: te.Code == 421}
	}
	return &deliveryError{fate: retryLater, step: step, err: err, broken: true}
}

// timedConn gives every read and write its own deadline: the SMTP timeout, no later
// than limit (the run's deadline) while limit is set. It remembers a failed write: once
// the final "." of DATA is written without error, only the server knows whether it
// kept the message.
type timedConn struct {
	net.Conn
	timeout  time.Duration
	limit    time.Time // the run's deadline; zero is none
	writeErr error
}

func (c *timedConn) arm() {
	d := time.Now().Add(c.timeout)
	if !c.limit.IsZero() && c.limit.Before(d) {
		d = c.limit
	}
	_ = c.Conn.SetDeadline(d)
}

func (c *timedConn) Read(p []byte) (int, error) {
	c.arm()
	return c.Conn.Read(p)
}

func (c *timedConn) Write(p []byte) (int, error) {
	c.arm()
	n, err := c.Conn.Write(p)
	if err != nil && c.writeErr == nil {
		c.writeErr = err
	}
	return n, err
}

// session is one SMTP connection, reused for the emails of a run.
type session struct {
	client *smtp.Client
	conn   *timedConn
	sent   int
}

// maxPerSession is how many emails one connection carries before a fresh one; many
// servers refuse more than about a hundred.
const maxPerSession = 100

// dialSMTP connects, says EHLO, secures the connection as configured and signs in
// when a username is set. Nothing can be delivered yet, so any failure is retryLater.
func dialSMTP(ctx context.Context, cfg config.SMTP, roots *x509.CertPool) (*session, error) {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	d := net.Dialer{Timeout: cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, smtpFailure("connect to "+addr, err)
	}
	limit, _ := ctx.Deadline()
	tc := &timedConn{Conn: raw, timeout: cfg.Timeout, limit: limit}
	tlsConfig := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: roots}
	var conn net.Conn = tc
	if cfg.TLS == "tls" {
		tlsConn := tls.Client(tc, tlsConfig)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, smtpFailure("TLS handshake with "+addr, err)
		}
		conn = tlsConn
	}
	client, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		raw.Close()
		return nil, smtpFailure("greeting of "+addr, err)
	}
	s := &session{client: client, conn: tc}
	if err := s.open(cfg, tlsConfig); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *session) open(cfg config.SMTP, tlsConfig *tls.Config) error {
	c := s.client
	if err := c.Hello(ehloName(s.conn.LocalAddr())); err != nil {
		return smtpFailure("EHLO", err)
	}
	if cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &deliveryError{fate: retryLater, step: "STARTTLS", broken: true,
				err: errors.New("the server does not offer STARTTLS; OPSPINE_SMTP_TLS=tls for implicit TLS (port 465), or none to send unencrypted")}
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return smtpFailure("STARTTLS", err)
		}
	}
	if cfg.Username == "" {
		return nil
	}
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return &deliveryError{fate: retryLater, step: "AUTH", broken: true,
			err: errors.New("OPSPINE_SMTP_USERNAME is set but the server offers no AUTH")}
	}
	var auth smtp.Auth
	switch offered := strings.Fields(strings.ToUpper(mechs)); {
	case slices.Contains(offered, "PLAIN"):
		auth = smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host, false)
	case slices.Contains(offered, "LOGIN"):
		auth = smtp.LoginAuth(cfg.Username, cfg.Password, cfg.Host, false)
	default:
		return &deliveryError{fate: retryLater, step: "AUTH", broken: true,
			err: fmt.Errorf("the server offers AUTH %s; opspine signs in with PLAIN or LOGIN", mechs)}
	}
	if err := c.Auth(auth); err != nil {
		// a refused sign-in is the configuration's fault, not the email's
		de := smtpFailure("AUTH", err)
		de.fate, de.broken = retryLater, true
		return de
	}
	return nil
}

// ehloName is this machine's domain name, or else the address literal of this end of
// the connection (RFC 5321 4.1.4), which servers accept where a bare host name is not.
func ehloName(local net.Addr) string {
	if h := localHostname(); h != "" {
		return h
	}
	if a, ok := local.(*net.TCPAddr); ok {
		if ip4 := a.IP.To4(); ip4 != nil {
			return "[" + ip4.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "localhost"
}

// deliver hands one message to the server: MAIL FROM, RCPT TO each recipient, then
// dataStarting (which must commit the moment) and DATA. On success it returns the
// server's answer to the end of data, usually with its queue id.
func (s *session) deliver(from string, rcpts []string, message []byte, dataStarting func() error) (string, error) {
	c := s.client
	if err := c.Mail("<" + from + ">"); err != nil {
		return "", s.abort(smtpFailure("MAIL FROM", err))
	}
	for _, r := range rcpts {
		if err := c.Rcpt("<" + r + ">"); err != nil {
			return "", s.abort(smtpFailure("RCPT TO <"+r+">", err))
		}
	}
	if err := dataStarting(); err != nil {
		return "", s.abort(&deliveryError{fate: retryLater, step: "before DATA", err: err})
	}
	w, err := c.Data()
	if err != nil {
		return "", s.abort(smtpFailure("DATA", err))
	}
	s.conn.writeErr = nil
	if _, err := w.Write(message); err != nil {
		return "", &deliveryError{fate: retryLater, step: "message data", err: err, broken: true}
	}
	// The answer to the final "." gets a whole SMTP timeout even past the run's deadline:
	// cutting it short would turn a delivery we could have confirmed into an unknown one.
	limit := s.conn.limit
	s.conn.limit = time.Time{}
	err = w.Close() // writes the final "." and reads the answer
	s.conn.limit = limit
	s.sent++
	if err == nil {
		resp := ""
		if dc, ok := w.(*smtp.DataCloser); ok {
			resp = dc.ServerResponse()
		}
		return resp, nil
	}
	var te *textproto.Error
	switch {
	case errors.As(err, &te):
		return "", smtpFailure("end of data", err) // the server answered: it did not take the message
	case s.conn.writeErr != nil:
		// the end of the data never left: the server cannot have the message
		return "", &deliveryError{fate: retryLater, step: "end of data", err: s.conn.writeErr, broken: true}
	default:
		return "", &deliveryError{fate: unknownFate, step: "end of data", err: err, broken: true}
	}
}

// abort ends a refused transaction with RSET so the connection can carry the next
// email; a connection that cannot is marked broken.
func (s *session) abort(de *deliveryError) error {
	if !de.broken {
		if err := s.client.Reset(); err != nil {
			de.broken = true
		}
	}
	return de
}

// usable says whether the next email can go over this connection.
func (s *session) usable() bool { return s.sent < maxPerSession }

func (s *session) quit() {
	_ = s.client.Quit()
	s.close()
}

func (s *session) close() { _ = s.client.Close() }
