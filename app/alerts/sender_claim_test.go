package alerts_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/alerts/alerttest"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/app/testkit"
)

// seeClaim is a transport that reads the message's row from another connection when
// the request leaves, before passing it on: what a process killed during the request
// would leave behind.
type seeClaim struct {
	d         *delivery
	seenState string
	seenClaim string
}

func (s *seeClaim) RoundTrip(r *http.Request) (*http.Response, error) {
	var row struct {
		State     string `db:"state"`
		ClaimedAt string `db:"claimed_at"`
	}
	if err := s.d.app.DB().NewQuery(`SELECT state, claimed_at FROM alert_notifications LIMIT 1`).One(&row); err != nil {
		return nil, err
	}
	s.seenState, s.seenClaim = row.State, row.ClaimedAt
	return http.DefaultTransport.RoundTrip(r)
}

func TestTheClaimIsCommittedBeforeSlackIsCalled(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Critical, "k"))
	seen := &seeClaim{d: d}
	s := d.sender(d.hooks("urgent"))
	s.HTTP = &http.Client{Timeout: time.Second, Transport: seen}
	if rep := d.deliver(s); rep.Sent != 1 {
		t.Fatalf("%+v", rep)
	}
	if seen.seenState != alerts.NotificationSending || seen.seenClaim == "" {
		t.Fatalf("while Slack was called the row was %q claimed at %q; want sending with a claim time", seen.seenState, seen.seenClaim)
	}
	var claim string
	if err := d.app.DB().NewQuery(`SELECT claimed_at FROM alert_notifications`).Row(&claim); err != nil || claim != "" {
		t.Fatalf("claimed_at after the send: %q %v", claim, err)
	}
}

// A process killed while Slack was being called leaves the message in sending (as
// the test above sees it mid-request). Slack may have posted it, and it takes no
// idempotency key: the next runs do not send it again. Once the claim is older than a
// request can last, it is dead with an explanation and an ops event, visible to the
// outbox-health check, and a person can send it again.
func TestAMessageLeftInSendingByAKilledProcessIsNotSentTwice(t *testing.T) {
	d := newDelivery(t)
	id := d.raise(alertOf(alerts.Critical, "k"))
	if _, err := d.app.DB().NewQuery(`UPDATE alert_notifications SET state = 'sending', claimed_at = {:now}`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(d.clock.Now())}).Execute(); err != nil {
		t.Fatal(err)
	}
	s := d.sender(d.hooks("urgent"))

	d.clock.Advance(30 * time.Second) // a request may still be running somewhere
	if rep := d.deliver(s); rep.Due != 0 || rep.Abandoned != 0 {
		t.Fatalf("a fresh claim was touched: %+v", rep)
	}
	q := d.notification("1=1")
	if err := alerts.RequeueNotification(d.app, d.clock.Now(), q.ID, "staff:abc"); !errors.Is(err, alerts.ErrBeingSent) {
		t.Fatalf("requeue of a message being sent: %v", err)
	}

	d.clock.Advance(time.Minute)
	rep := d.deliver(s)
	q = d.notification("1=1")
	if rep.Abandoned != 1 || rep.Sent != 0 || q.State != alerts.NotificationDead || q.Attempts != 1 {
		t.Fatalf("report %+v, notification %+v", rep, q)
	}
	if d.slack.Requests() != 0 {
		t.Fatalf("Slack was called %d times for a message that may have arrived", d.slack.Requests())
	}
	if n := testkit.Count(t, d.app, "ops_events", "kind = 'alert.delivery_dead' AND entity_id = {:id} AND message LIKE '%may have arrived%'", dbx.Params{"id": q.ID}); n != 1 {
		t.Errorf("%d alert.delivery_dead events saying it may have arrived, want 1", n)
	}
	if n := testkit.Count(t, d.app, "alerts", "id = {:id} AND delivery_attempts = 1", dbx.Params{"id": id}); n != 1 {
		t.Errorf("the alert's delivery totals do not count the abandoned attempt")
	}

	// the channel does not show it: staff send it again, once
	if err := alerts.RequeueNotification(d.app, d.clock.Now(), q.ID, "staff:abc"); err != nil {
		t.Fatal(err)
	}
	if rep := d.deliver(s); rep.Sent != 1 || d.slack.Requests() != 1 {
		t.Fatalf("requeued message: %+v, %d requests", rep, d.slack.Requests())
	}
}

// A shutdown cutting a request short gives the message back to its queue as it was:
// the next run sends it (at least once: Slack may have had the cut request).
func TestAShutdownDuringTheRequestGivesTheMessageBack(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Critical, "k"))
	d.slack.Answer(alerttest.Slow)
	s := d.sender(d.hooks("urgent"))
	s.HTTP = &http.Client{Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	rep, err := s.DeliverDue(ctx)
	if !errors.Is(err, context.Canceled) || rep.Left != 1 {
		t.Fatalf("report %+v, error %v", rep, err)
	}
	if q := d.notification("1=1"); q.State != alerts.NotificationPending || q.Attempts != 0 {
		t.Fatalf("after the shutdown: %+v, want pending with no attempt counted", q)
	}
	d.slack.Answer(alerttest.OK)
	if rep := d.deliver(d.sender(d.hooks("urgent"))); rep.Sent != 1 {
		t.Fatalf("next run: %+v", rep)
	}
}
