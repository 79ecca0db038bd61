package alerts_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/testkit"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func ingestAlert(sev alerts.Severity, oldest string) alerts.Alert {
	return alerts.Alert{Severity: sev, Title: "Orders are waiting in the inbox", Body: "The oldest pending delivery is " + oldest + " old.",
		Fields: []alerts.Field{{Label: "Oldest pending", Value: oldest}}, SourceCheck: "order_ingestion_slo", DedupeKey: "order_ingestion_slo:oldest_pending"}
}

type notification struct {
	Alert    string `db:"alert"`
	Kind     string `db:"kind"`
	Severity string `db:"severity"`
	Channel  string `db:"channel"`
	State    string `db:"state"`
}

func notifications(t *testing.T, app core.App) []notification {
	t.Helper()
	var out []notification
	if err := app.DB().NewQuery(`SELECT alert, kind, severity, channel, state FROM alert_notifications ORDER BY created, rowid`).All(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func kinds(ns []notification) string {
	var k []string
	for _, n := range ns {
		k = append(k, n.Kind+"/"+n.Channel)
	}
	return strings.Join(k, " ")
}

func raise(t *testing.T, app core.App, now time.Time, a alerts.Alert) (string, bool) {
	t.Helper()
	id, notified, err := alerts.Raise(app.DB(), now, a)
	if err != nil {
		t.Fatalf("raise: %v", err)
	}
	return id, notified
}

// markDelivered stands in for a successful alert-deliver run.
func markDelivered(t *testing.T, app core.App) {
	t.Helper()
	if _, err := app.DB().NewQuery(`UPDATE alert_notifications SET state = 'sent' WHERE state = 'pending'`).Execute(); err != nil {
		t.Fatal(err)
	}
}

func TestRaisingTheSameKeyInsideTheCooldownUpdatesOneAlertAndNotifiesOnce(t *testing.T) {
	app := newApp(t)
	var first string
	for i := range 50 {
		a := ingestAlert(alerts.Warning, (time.Duration(i+20) * time.Minute).String())
		id, notified := raise(t, app, t0.Add(time.Duration(i)*time.Minute), a)
		if i == 0 {
			first = id
		}
		if id != first || notified != (i == 0) {
			t.Fatalf("raise %d: id %s notified %v, want %s and only the first notified", i, id, notified, first)
		}
	}
	var row struct {
		Occurrences int    `db:"occurrences"`
		Body        string `db:"body"`
		Fields      string `db:"fields"`
		LastSeen    string `db:"last_seen_at"`
		State       string `db:"state"`
	}
	if err := app.DB().NewQuery(`SELECT occurrences, body, fields, last_seen_at, state FROM alerts`).One(&row); err != nil {
		t.Fatal(err)
	}
	if row.Occurrences != 50 || row.State != "open" || !strings.Contains(row.Body, "1h9m0s") ||
		!strings.Contains(row.Fields, `"value":"1h9m0s"`) || row.LastSeen != "2026-11-21 09:49:00.000Z" {
		t.Errorf("alert after 50 raises: %+v", row)
	}
	if got := kinds(notifications(t, app)); got != "firing/alerts" {
		t.Errorf("notifications %q, want one firing to the alerts channel", got)
	}
}

func TestAfterTheCooldownOneReminderFollowsOnceTheLastMessageIsDelivered(t *testing.T) {
	app := newApp(t)
	a := ingestAlert(alerts.Warning, "20m")
	raise(t, app, t0, a)
	// Slack has not taken the firing message yet: a reminder would only pile up behind it
	if _, notified := raise(t, app, t0.Add(61*time.Minute), a); notified {
		t.Fatal("reminder queued behind an undelivered message")
	}
	markDelivered(t, app)
	if _, notified := raise(t, app, t0.Add(62*time.Minute), a); !notified {
		t.Fatal("no reminder after the cooldown")
	}
	markDelivered(t, app)
	if _, notified := raise(t, app, t0.Add(90*time.Minute), a); notified {
		t.Fatal("a second reminder inside the new cooldown")
	}
	if got := kinds(notifications(t, app)); got != "firing/alerts reminder/alerts" {
		t.Errorf("notifications %q", got)
	}

	// staff tune the cooldown in the config collection
	if _, err := app.DB().NewQuery(`INSERT INTO config (id, key, value) VALUES ('cooldown5minut', 'alert_cooldown_minutes', 5)`).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, notified := raise(t, app, t0.Add(68*time.Minute), a); !notified {
		t.Error("no reminder after a 5 minute cooldown")
	}
}

func TestAHigherSeverityNotifiesAtOnceALowerOneDoesNot(t *testing.T) {
	app := newApp(t)
	raise(t, app, t0, ingestAlert(alerts.Warning, "20m"))
	steps := []struct {
		sev      alerts.Severity
		notified bool
	}{
		{alerts.Critical, true},  // escalated at once, inside the cooldown
		{alerts.Warning, false},  // better, still open: quiet
		{alerts.Critical, false}, // people were told about critical already
	}
	for i, s := range steps {
		if _, notified := raise(t, app, t0.Add(time.Duration(i+1)*time.Minute), ingestAlert(s.sev, "40m")); notified != s.notified {
			t.Errorf("step %d (%s): notified %v, want %v", i, s.sev, notified, s.notified)
		}
	}
	if got := kinds(notifications(t, app)); got != "firing/alerts escalated/urgent" {
		t.Errorf("notifications %q", got)
	}
	open, err := alerts.OpenAlerts(app.DB())
	if err != nil || len(open) != 1 || open[0].Severity != alerts.Critical || open[0].Occurrences != 4 {
		t.Errorf("open alerts %+v %v", open, err)
	}
}

func TestResolveQueuesOneResolvedMessageAndARaiseAfterItOpensANewAlert(t *testing.T) {
	app := newApp(t)
	a := ingestAlert(alerts.Critical, "45m")
	first, _ := raise(t, app, t0, a)
	for i, want := range []bool{true, false} {
		resolved, err := alerts.Resolve(app.DB(), t0.Add(time.Hour), a.DedupeKey)
		if err != nil || resolved != want {
			t.Fatalf("resolve %d: %v %v, want %v", i, resolved, err, want)
		}
	}
	if resolved, err := alerts.Resolve(app.DB(), t0, "never:raised"); resolved || err != nil {
		t.Errorf("resolving an unknown key: %v %v", resolved, err)
	}
	if n := testkit.Count(t, app, "alerts", "id = {:id} AND state = 'resolved' AND resolved_at = '2026-11-21 10:00:00.000Z'", map[string]any{"id": first}); n != 1 {
		t.Error("alert not resolved at the resolve time")
	}
	second, notified := raise(t, app, t0.Add(2*time.Hour), a)
	if second == first || !notified {
		t.Errorf("raise after resolve: id %s (first %s) notified %v, want a new alert, notified", second, first, notified)
	}
	if got := kinds(notifications(t, app)); got != "firing/urgent resolved/urgent firing/urgent" {
		t.Errorf("notifications %q", got)
	}
}

func TestRaiseInATransactionIsRolledBackWithIt(t *testing.T) {
	app := newApp(t)
	boom := errors.New("check failed later")
	err := app.RunInTransaction(func(txApp core.App) error {
		if _, _, err := alerts.Raise(txApp.DB(), t0, ingestAlert(alerts.Critical, "1h")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := testkit.Count(t, app, "alerts", "", nil) + testkit.Count(t, app, "alert_notifications", "", nil); n != 0 {
		t.Errorf("%d rows left by a rolled back raise", n)
	}
}

func TestRaiseRefusesAnAlertWithoutSeverityKeyOrTitle(t *testing.T) {
	app := newApp(t)
	for _, a := range []alerts.Alert{
		{Severity: "fatal", Title: "x", DedupeKey: "k"},
		{Severity: alerts.Warning, Title: "x"},
		{Severity: alerts.Warning, DedupeKey: "k"},
	} {
		if _, _, err := alerts.Raise(app.DB(), t0, a); err == nil {
			t.Errorf("%+v raised", a)
		}
	}
	if n := testkit.Count(t, app, "alerts", "", nil); n != 0 {
		t.Errorf("%d alerts written", n)
	}
}

func TestOpenAlertsListsTheMostSevereFirstThenTheOldest(t *testing.T) {
	app := newApp(t)
	raise(t, app, t0, alerts.Alert{Severity: alerts.Info, Title: "info", DedupeKey: "i"})
	raise(t, app, t0.Add(time.Minute), alerts.Alert{Severity: alerts.Warning, Title: "old warning", DedupeKey: "w1", SourceCheck: "c"})
	raise(t, app, t0.Add(2*time.Minute), alerts.Alert{Severity: alerts.Critical, Title: "critical", DedupeKey: "c"})
	raise(t, app, t0.Add(3*time.Minute), alerts.Alert{Severity: alerts.Warning, Title: "new warning", DedupeKey: "w2"})
	raise(t, app, t0.Add(4*time.Minute), alerts.Alert{Severity: alerts.Warning, Title: "gone", DedupeKey: "g"})
	if _, err := alerts.Resolve(app.DB(), t0.Add(5*time.Minute), "g"); err != nil {
		t.Fatal(err)
	}
	open, err := alerts.OpenAlerts(app.DB())
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, a := range open {
		titles = append(titles, a.Title)
	}
	if got := strings.Join(titles, ", "); got != "critical, old warning, new warning, info" {
		t.Errorf("open alerts: %s", got)
	}
	if w := open[1]; w.SourceCheck != "c" || w.DedupeKey != "w1" || !w.OpenedAt.Equal(t0.Add(time.Minute)) || !w.LastSeenAt.Equal(w.OpenedAt) || w.Occurrences != 1 {
		t.Errorf("open alert fields: %+v", w)
	}
}

func TestPostDigestQueuesAnInfoMessageForTheDigestChannel(t *testing.T) {
	app := newApp(t)
	if err := alerts.PostDigest(app.DB(), t0, "Daily snapshot", "Yesterday at a glance", []alerts.Field{{Label: "Orders", Value: "42"}}); err != nil {
		t.Fatal(err)
	}
	got := notifications(t, app)
	if len(got) != 1 || got[0] != (notification{Kind: "digest", Severity: "info", Channel: "digest", State: "pending"}) {
		t.Errorf("digest queued as %+v", got)
	}
	if n := testkit.Count(t, app, "alerts", "", nil); n != 0 {
		t.Errorf("a digest opened %d alerts", n)
	}
}

func TestResolveAlertByHandResolvesOnceAndRecordsWho(t *testing.T) {
	app := newApp(t)
	id, _ := raise(t, app, t0, ingestAlert(alerts.Warning, "20m"))
	for range 2 {
		if err := alerts.ResolveAlertByHand(app, t0.Add(time.Minute), id, "staff:abc"); err != nil {
			t.Fatal(err)
		}
	}
	if err := alerts.ResolveAlertByHand(app, t0, "nosuchalert0000", "staff:abc"); !errors.Is(err, alerts.ErrAlertNotFound) {
		t.Errorf("unknown alert: %v", err)
	}
	if got := kinds(notifications(t, app)); got != "firing/alerts resolved/alerts" {
		t.Errorf("notifications %q", got)
	}
	if n := testkit.Count(t, app, "ops_events", "kind = 'alert.resolved_by_hand' AND actor = 'staff:abc' AND entity_id = {:id}", dbx.Params{"id": id}); n != 1 {
		t.Errorf("%d ops events, want 1", n)
	}
}
