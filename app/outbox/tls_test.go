package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
)

// The sender checks the server's certificate (a self-signed one is refused until it
// is trusted), encrypts before it signs in, and refuses to send in the clear when
// STARTTLS is asked for and not offered.
func TestTLSChecksTheCertificateAndSignsInOverTheEncryptedConnection(t *testing.T) {
	t.Parallel()
	cert, pool := selfSignedCert(t)
	cases := []struct {
		mode   string
		option fakeOption
	}{
		{"starttls", withTLS(cert)},
		{"tls", withImplicitTLS(cert)},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			fake := startFakeSMTP(t, c.option, withAuth("ops", "s3cret"))
			app := testkit.NewApp(t)
			now := t0
			sender := &outbox.Sender{App: app, Brand: brand, MaxAttempts: 5, Backoff: outbox.DefaultBackoff, Now: func() time.Time { return now },
				SMTP: config.SMTP{Host: "127.0.0.1", Port: fake.Port, TLS: c.mode, Username: "ops", Password: "s3cret", From: mailFrom, Timeout: 2 * time.Second}}
			id, _, err := outbox.Enqueue(app, now, labelEmail("tls:"+c.mode))
			if err != nil {
				t.Fatal(err)
			}

			_, err = sender.SendDue(context.Background())
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("untrusted certificate: %v, want a certificate error", err)
			}
			if row := loadRow(t, app, id); row.State != "failed" || len(fake.messages()) != 0 {
				t.Fatalf("untrusted certificate: %+v", row)
			}

			sender.SetRootCAs(pool)
			sender.SMTP.Password = "wrong"
			now = now.Add(time.Hour)
			_, err = sender.SendDue(context.Background())
			if err == nil || !strings.Contains(err.Error(), "AUTH: 535") {
				t.Fatalf("wrong password: %v, want AUTH 535", err)
			}
			if row := loadRow(t, app, id); row.State != "failed" {
				t.Fatalf("a refused sign-in is the configuration's fault, not the email's: %+v", row)
			}

			sender.SMTP.Password = "s3cret"
			now = now.Add(time.Hour)
			rep, err := sender.SendDue(context.Background())
			if err != nil || rep.Sent != 1 {
				t.Fatalf("trusted: %+v %v", rep, err)
			}
			got := fake.messages()
			if len(got) != 1 || !got[0].TLS {
				t.Fatalf("%d messages, encrypted %v; want 1 over TLS", len(got), len(got) == 1 && got[0].TLS)
			}
		})
	}
}

func TestStartTLSAskedForButNotOfferedSendsNothing(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t) // no TLS
	app := testkit.NewApp(t)
	sender := &outbox.Sender{App: app, Brand: brand, MaxAttempts: 5, Backoff: outbox.DefaultBackoff, Now: func() time.Time { return t0 },
		SMTP: config.SMTP{Host: "127.0.0.1", Port: fake.Port, TLS: "starttls", From: mailFrom, Timeout: 2 * time.Second}}
	id, _, err := outbox.Enqueue(app, t0, labelEmail("tls:not-offered"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.SendDue(context.Background()); err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("run error %v, want the server does not offer STARTTLS", err)
	}
	if row := loadRow(t, app, id); row.State != "failed" || len(fake.messages()) != 0 {
		t.Fatalf("row %+v, messages %d", row, len(fake.messages()))
	}
}

// An email started near the run's deadline could be cut off mid-way, so a run with
// less than an SMTP timeout left claims nothing and leaves the rest to the next run.
func TestARunOutOfTimeLeavesTheRestForTheNextRun(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	app := testkit.NewApp(t)
	sender := &outbox.Sender{App: app, Brand: brand, MaxAttempts: 5, Backoff: outbox.DefaultBackoff, Now: func() time.Time { return t0 },
		SMTP: config.SMTP{Host: "127.0.0.1", Port: fake.Port, TLS: "none", From: mailFrom, Timeout: 5 * time.Second}}
	for _, key := range []string{"late:a", "late:b"} {
		if _, _, err := outbox.Enqueue(app, t0, labelEmail(key)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	rep, err := sender.SendDue(ctx)
	if err != nil || rep.Deferred != 2 || !strings.Contains(rep.Summary(), "2 left for the next run") {
		t.Fatalf("report %+v (%s), error %v", rep, rep.Summary(), err)
	}
	if n := testkit.Count(t, app, "email_outbox", "state = 'pending' AND attempts = 0", nil); n != 2 {
		t.Fatalf("%d emails untouched, want 2", n)
	}
	rep, err = sender.SendDue(context.Background())
	if err != nil || rep.Sent != 2 || len(fake.messages()) != 2 {
		t.Fatalf("next run: %+v %v", rep, err)
	}
}
