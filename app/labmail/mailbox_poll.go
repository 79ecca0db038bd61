package labmail

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/pocketbase/pocketbase/core"
)

// IMAP is where lab emails arrive.
type IMAP struct {
	Addr     string // host:port
	Username string
	Password string
	// TLS is implicit TLS (usually port 993); false is plain text, for tests and
	// local relays only.
	TLS     bool
	Mailbox string
	// ProcessedMailbox, when set, is where handled messages are moved; otherwise they
	// are marked \Seen and stay.
	ProcessedMailbox string
	// TLSConfig overrides the default (tests with their own certificate).
	TLSConfig *tls.Config
}

// ioTimeout bounds each network read and write of a poll.
const ioTimeout = 30 * time.Second

// Poller fetches lab emails from one mailbox, stores and processes them.
type Poller struct {
	App    core.App
	IMAP   IMAP
	Now    func() time.Time
	Logger *slog.Logger
}

// PollReport is what one poll did.
type PollReport struct {
	Fetched, Stored, Duplicates, Processed, Quarantined, Ignored, Failed int
	UIDValidityReset                                                     bool
}

// Summary is one line for monitoring_runs.
func (r PollReport) Summary() string {
	s := fmt.Sprintf("%d fetched: %d new, %d already stored; %d processed, %d quarantined, %d ignored, %d failed",
		r.Fetched, r.Stored, r.Duplicates, r.Processed, r.Quarantined, r.Ignored, r.Failed)
	if r.UIDValidityReset {
		s += "; UIDVALIDITY changed, mailbox read again from the start"
	}
	return s
}

// Figures are the report's numbers for monitoring_runs.
func (r PollReport) Figures() map[string]any {
	return map[string]any{"fetched": r.Fetched, "stored": r.Stored, "duplicates": r.Duplicates, "processed": r.Processed,
		"quarantined": r.Quarantined, "ignored": r.Ignored, "failed": r.Failed, "uidvalidity_reset": r.UIDValidityReset}
}

// Poll reads the messages after the last one finished, oldest first, without marking
// them read. Each is stored, then processed, and only then marked \Seen (or moved) and
// remembered as finished, so that a crash at any point redoes at most the message in
// hand, which the Message-ID and PDF hash make a no-op. A changed UIDVALIDITY starts
// over from the first message.
func (p *Poller) Poll(ctx context.Context) (PollReport, error) {
	var rep PollReport
	key := p.mailboxKey()
	st, err := loadMailboxState(p.App, key)
	if err != nil {
		return rep, err
	}
	err = p.poll(ctx, st, &rep)
	now := p.Now().UTC()
	st.rec.Set("last_poll_at", now)
	if err != nil {
		st.rec.Set("last_error", clip(err.Error(), 1900))
	} else {
		st.rec.Set("last_success_at", now)
		st.rec.Set("last_error", "")
	}
	if serr := p.App.Save(st.rec); serr != nil {
		err = errors.Join(err, fmt.Errorf("labmail: save mailbox state: %w", serr))
	}
	return rep, err
}

func (p *Poller) poll(ctx context.Context, st *mailboxState, rep *PollReport) error {
	c, err := p.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(p.IMAP.Username, p.IMAP.Password).Wait(); err != nil {
		return fmt.Errorf("labmail: IMAP login as %s: %w", p.IMAP.Username, err)
	}
	sel, err := c.Select(p.mailbox(), nil).Wait()
	if err != nil {
		return fmt.Errorf("labmail: select %s: %w", p.mailbox(), err)
	}
	if st.uidValidity() != sel.UIDValidity {
		rep.UIDValidityReset = st.uidValidity() != 0
		st.rec.Set("uid_validity", sel.UIDValidity)
		st.rec.Set("last_uid", 0)
		if err := p.App.Save(st.rec); err != nil {
			return fmt.Errorf("labmail: save mailbox state: %w", err)
		}
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var uids imap.UIDSet
	uids.AddRange(imap.UID(st.lastUID()+1), 0) // 0 is "*"
	found, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{uids}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("labmail: search %s: %w", p.mailbox(), err)
	}
	// A message that fails to process stays unread and the remembered place stops
	// before it, so the next poll tries it again; the messages after it are still
	// handled now (read again next time, they are no-ops).
	var failures []error
	for _, uid := range found.AllUIDs() {
		if uint32(uid) <= st.lastUID() {
			continue // "n:*" always includes the last message
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(failures, err)...)
		}
		err := p.handle(c, uid, rep)
		if _, ok := errors.AsType[*processError](err); ok {
			failures = append(failures, err)
			continue
		}
		if err != nil {
			return errors.Join(append(failures, err)...)
		}
		if len(failures) > 0 {
			continue
		}
		st.rec.Set("last_uid", uint32(uid))
		if err := p.App.Save(st.rec); err != nil {
			return fmt.Errorf("labmail: save mailbox state: %w", err)
		}
	}
	return errors.Join(failures...)
}

// processError is a message that was stored but could not be processed now.
type processError struct{ err error }

func (e *processError) Error() string { return e.err.Error() }
func (e *processError) Unwrap() error { return e.err }

// handle fetches one message, stores and processes it, then marks it seen or moves it.
// A processing error stops the poll before the message is marked: the next poll tries
// it again.
func (p *Poller) handle(c *imapclient.Client, uid imap.UID, rep *PollReport) error {
	heads, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, InternalDate: true, RFC822Size: true, Envelope: true}).Collect()
	if err != nil {
		return fmt.Errorf("labmail: fetch UID %d: %w", uid, err)
	}
	if len(heads) == 0 {
		return nil // expunged meanwhile
	}
	rep.Fetched++
	head := heads[0]
	var msg Message
	if head.RFC822Size > maxMessageBytes {
		msg = tooLarge(head, uid)
	} else {
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return fmt.Errorf("labmail: fetch UID %d: %w", uid, err)
		}
		if len(msgs) == 0 {
			return nil
		}
		var perr error
		msg, perr = ParseMessage(msgs[0].FindBodySection(section))
		if perr != nil && msg.MessageID == "" {
			p.log().Warn("lab email unreadable", slog.Uint64("uid", uint64(uid)), slog.String("error", perr.Error()))
			msg.MessageID = fmt.Sprintf("unreadable-uid-%d@opspine.invalid", uid)
		}
	}
	if msg.ReceivedAt.IsZero() {
		msg.ReceivedAt = head.InternalDate
	}
	msg.MailboxUID = uint32(uid)
	now := p.Now().UTC()
	stored, err := StoreEmail(p.App, msg, now)
	if err != nil {
		return err
	}
	if stored.New {
		rep.Stored++
	} else {
		rep.Duplicates++
	}
	state := stored.State
	if state == StateReceived || state == StateFailed {
		out, err := ProcessEmail(p.App, stored.ID, Options{Now: now})
		if err != nil {
			rep.Failed++
			return &processError{fmt.Errorf("labmail: process email %s (UID %d): %w", stored.ID, uid, err)}
		}
		state = out.State
	}
	if stored.New || state != stored.State {
		switch state {
		case StateProcessed:
			rep.Processed++
		case StateQuarantined:
			rep.Quarantined++
		case StateIgnored:
			rep.Ignored++
		}
	}
	return p.markHandled(c, uid)
}

// tooLarge is a message too big to download: kept, from its envelope, in quarantine.
func tooLarge(head *imapclient.FetchMessageBuffer, uid imap.UID) Message {
	msg := Message{Refused: fmt.Sprintf("the message is %d MB, larger than %d MB: open it in the mailbox and enter the result by hand",
		head.RFC822Size>>20, maxMessageBytes>>20)}
	if env := head.Envelope; env != nil {
		msg.MessageID, msg.Subject, msg.ReceivedAt = env.MessageID, env.Subject, env.Date
		if len(env.From) > 0 {
			msg.From = env.From[0].Addr()
		}
	}
	if msg.MessageID == "" {
		msg.MessageID = fmt.Sprintf("too-large-uid-%d-%d@opspine.invalid", uid, head.RFC822Size)
	}
	return msg
}

func (p *Poller) markHandled(c *imapclient.Client, uid imap.UID) error {
	set := imap.UIDSetNum(uid)
	if p.IMAP.ProcessedMailbox != "" {
		if _, err := c.Move(set, p.IMAP.ProcessedMailbox).Wait(); err != nil {
			return fmt.Errorf("labmail: move UID %d to %s: %w", uid, p.IMAP.ProcessedMailbox, err)
		}
		return nil
	}
	err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		return fmt.Errorf("labmail: mark UID %d seen: %w", uid, err)
	}
	return nil
}

func (p *Poller) dial(ctx context.Context) (*imapclient.Client, error) {
	d := &net.Dialer{Timeout: ioTimeout}
	conn, err := d.DialContext(ctx, "tcp", p.IMAP.Addr)
	if err != nil {
		return nil, fmt.Errorf("labmail: connect to %s: %w", p.IMAP.Addr, err)
	}
	if p.IMAP.TLS {
		cfg := p.IMAP.TLSConfig
		if cfg == nil {
			host, _, _ := net.SplitHostPort(p.IMAP.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("labmail: TLS with %s: %w", p.IMAP.Addr, err)
		}
		conn = tc
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c := imapclient.New(conn, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("labmail: IMAP greeting from %s: %w", p.IMAP.Addr, err)
	}
	return c, nil
}

func (p *Poller) mailbox() string {
	if p.IMAP.Mailbox == "" {
		return "INBOX"
	}
	return p.IMAP.Mailbox
}

func (p *Poller) mailboxKey() string {
	return strings.ToLower(p.IMAP.Username + "@" + p.IMAP.Addr + "/" + p.mailbox())
}

func (p *Poller) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return p.App.Logger()
}

// mailboxState is the lab_mailbox_state row of one mailbox.
type mailboxState struct{ rec *core.Record }

func (s *mailboxState) uidValidity() uint32 { return uint32(s.rec.GetInt("uid_validity")) }
func (s *mailboxState) lastUID() uint32     { return uint32(s.rec.GetInt("last_uid")) }

func loadMailboxState(app core.App, key string) (*mailboxState, error) {
	rec, err := app.FindFirstRecordByData(CollectionMailbox, "mailbox_key", key)
	if err == nil {
		return &mailboxState{rec}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("labmail: read mailbox state: %w", err)
	}
	col, err := app.FindCachedCollectionByNameOrId(CollectionMailbox)
	if err != nil {
		return nil, err
	}
	rec = core.NewRecord(col)
	rec.Set("mailbox_key", key)
	return &mailboxState{rec}, nil
}
