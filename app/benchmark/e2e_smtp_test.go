package benchmark

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// stallAt is where the test SMTP server holds a session until the test lets go (after
// it has killed the client): before DATA (at RCPT TO) or inside DATA (the whole
// message, final "." included, has been read and the answer is not given).
type stallAt int

const (
	stallNever stallAt = iota
	stallAtRcpt
	stallInData
)

// stallServer is an SMTP server on 127.0.0.1 that records every message it accepts
// by Message-ID, every message whose data it read, and can stall one session at a
// chosen step.
type stallServer struct {
	port int

	mu       sync.Mutex
	at       stallAt
	skip     int            // messages accepted normally before the stall applies
	accepted map[string]int // Message-ID → times accepted (250 after the data)
	dataRead map[string]int // Message-ID → times its whole data was read
	order    []string       // Message-IDs in the order they were accepted

	stalled chan string   // gets "" (RCPT) or the Message-ID (DATA) when a session stalls
	release chan struct{} // closed when the test ends: stalled sessions answer 451
}

func startStallServer(t *testing.T) *stallServer {
	t.Helper()
	s := &stallServer{accepted: map[string]int{}, dataRead: map[string]int{},
		stalled: make(chan string, 8), release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &stallSession{s: s}, nil }))
	srv.Domain = "e2e.test"
	srv.MaxMessageBytes = 50 << 20
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		close(s.release)
		srv.Close()
		l.Close()
	})
	s.port = l.Addr().(*net.TCPAddr).Port
	return s
}

// stallNext makes the server stall at `at` after `skip` more messages are accepted.
func (s *stallServer) stallNext(at stallAt, skip int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.skip = at, skip
}

// shouldStall says whether the session must stall at step (and disarms the stall).
func (s *stallServer) shouldStall(step stallAt) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at != step || s.skip > 0 {
		return false
	}
	s.at = stallNever
	return true
}

func (s *stallServer) hold(what string) error {
	s.stalled <- what
	<-s.release
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "stalled by the test"}
}

// counts returns copies of the accepted and data-read counts and the accepted order.
func (s *stallServer) counts() (accepted, dataRead map[string]int, order []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	accepted, dataRead = map[string]int{}, map[string]int{}
	for k, v := range s.accepted {
		accepted[k] = v
	}
	for k, v := range s.dataRead {
		dataRead[k] = v
	}
	return accepted, dataRead, append([]string(nil), s.order...)
}

type stallSession struct{ s *stallServer }

func (x *stallSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *stallSession) Reset()                               {}
func (x *stallSession) Logout() error                        { return nil }

func (x *stallSession) Rcpt(string, *smtp.RcptOptions) error {
	if x.s.shouldStall(stallAtRcpt) {
		return x.s.hold("")
	}
	return nil
}

func (x *stallSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	id := "(no Message-ID)"
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		id = m.Header.Get("Message-Id")
	}
	x.s.mu.Lock()
	x.s.dataRead[id]++
	x.s.mu.Unlock()
	if x.s.shouldStall(stallInData) {
		return x.s.hold(id)
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.accepted[id]++
	x.s.order = append(x.s.order, id)
	if x.s.skip > 0 {
		x.s.skip--
	}
	return nil
}
