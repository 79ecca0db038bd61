package testkit

import (
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// StartIMAP serves the real go-imap v2 server on 127.0.0.1 with an in-memory mailbox
// (an INBOX) for user and password, closed when the test ends. It returns the address
// and the user, whose mailboxes a test fills directly.
func StartIMAP(t testing.TB, user, password string) (addr string, mailbox *imapmemserver.User) {
	t.Helper()
	mem := imapmemserver.New()
	mailbox = imapmemserver.NewUser(user, password)
	if err := mailbox.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(mailbox)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       QuietLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), mailbox
}

// QuietLogger drops a test server's log lines.
type QuietLogger struct{}

// Printf implements the servers' logger interface.
func (QuietLogger) Printf(string, ...any) {}
