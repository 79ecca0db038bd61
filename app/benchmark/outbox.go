package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/outbox"
	_ "github.com/opspine/opspine/pb_migrations" // the email_outbox collection
	"github.com/opspine/opspine/templates"
)

// drainLabelBytes is the size of the PDF each benchmark email carries, about a pouch
// label's.
const drainLabelBytes = 40 << 10

// MeasureEmailDrain enqueues n co-packer label emails (with a label-sized PDF each)
// into a fresh opspine database, then drains them through the real sender (claim,
// compose, SMTP over loopback, mark sent) to an in-process SMTP server that accepts
// everything, and returns the emails sent per second of the drain. Enqueueing is
// not timed.
func MeasureEmailDrain(n int) (emailsPerSecond float64, err error) {
	if n < 1 {
		return 0, fmt.Errorf("email drain: n must be at least 1")
	}
	dir, err := os.MkdirTemp("", "opspine-bench-email-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	app, closeApp, err := openMigrated(dir)
	if err != nil {
		return 0, fmt.Errorf("email drain: %w", err)
	}
	defer closeApp()

	port, accepted, stop, err := startDrainSMTP()
	if err != nil {
		return 0, err
	}
	defer stop()

	now := time.Now().UTC()
	pdf := bytes.Repeat([]byte("%PDF-1.4 label "), drainLabelBytes/15)
	for i := range n {
		code := fmt.Sprintf("PR-%s-%03d", now.Format("060102"), i%1000)
		_, _, err := outbox.Enqueue(app, now, outbox.Email{
			To: []string{"production@copacker.test"}, Template: "copacker_label", Brand: "opspine bench",
			Data:           templates.CopackerLabel{BatchCode: code, ProducedOn: now, KgProduced: 500, LabelFile: code + "-label.pdf"},
			IdempotencyKey: fmt.Sprintf("bench:%d", i),
			Attachments:    []outbox.Attachment{{Name: code + "-label.pdf", Content: pdf}},
		})
		if err != nil {
			return 0, fmt.Errorf("email drain: enqueue: %w", err)
		}
	}

	sender := &outbox.Sender{App: app, Brand: "opspine bench", MaxAttempts: 8, Backoff: outbox.DefaultBackoff,
		SMTP: config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none", From: "ops@opspine.test", Timeout: 10 * time.Second}}
	started := time.Now()
	sent := 0
	for sent < n {
		rep, err := sender.SendDue(context.Background())
		if err != nil {
			return 0, fmt.Errorf("email drain: %w", err)
		}
		if rep.Sent == 0 {
			return 0, fmt.Errorf("email drain: a run sent nothing with %d of %d sent (%s)", sent, n, rep.Summary())
		}
		sent += rep.Sent
	}
	elapsed := time.Since(started)
	if got := accepted.Load(); got != int64(n) {
		return 0, fmt.Errorf("email drain: the server accepted %d emails, want %d", got, n)
	}
	return rate(n, elapsed), nil
}

// startDrainSMTP serves SMTP on a free loopback port, accepting and counting every
// message, until stop.
func startDrainSMTP() (port int, accepted *atomic.Int64, stop func(), err error) {
	accepted = new(atomic.Int64)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &drainSession{accepted: accepted}, nil
	}))
	srv.Domain = "bench.test"
	srv.MaxMessageBytes = 50 << 20
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, nil, fmt.Errorf("email drain: listen: %w", err)
	}
	go srv.Serve(l)
	// closing the listener too: Close alone misses it if Serve has not registered it yet
	return l.Addr().(*net.TCPAddr).Port, accepted, func() { srv.Close(); l.Close() }, nil
}

type drainSession struct{ accepted *atomic.Int64 }

func (s *drainSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *drainSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *drainSession) Reset()                               {}
func (s *drainSession) Logout() error                        { return nil }

func (s *drainSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.accepted.Add(1)
	return nil
}
