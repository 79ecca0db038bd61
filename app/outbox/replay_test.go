package outbox_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
)

// A person replays a dead email once they know why it died: it goes back to pending
// with a fresh set of attempts and the same Message-ID, and is sent by the next run.
func TestReplayPutsADeadEmailBackAndTheNextRunSendsIt(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:replayed"))
	fake.failNext("rcpt", 550, "No such user here", 1)
	sendOK(t, s)
	dead := loadRow(t, s.App, id)
	if dead.State != "dead" {
		t.Fatalf("before the replay: %+v", dead)
	}

	s.Clock.Advance(time.Hour)
	previous, err := outbox.Replay(s.App, id, "staff:abc", s.Clock.Now())
	if err != nil || previous != "dead" {
		t.Fatalf("replay: %q %v", previous, err)
	}
	if row := loadRow(t, s.App, id); row.State != "pending" || row.Attempts != 0 {
		t.Fatalf("after the replay: %+v", row)
	}
	if n := testkit.Count(t, s.App, "ops_events", "entity_id = {:id} AND kind = 'email.replay_requested' AND actor = 'staff:abc'",
		map[string]any{"id": id}); n != 1 {
		t.Errorf("%d replay events, want 1", n)
	}
	if previous, err := outbox.Replay(s.App, id, "staff:abc", s.Clock.Now()); err != nil || previous != "pending" {
		t.Errorf("replaying a pending email again: %q %v, want a no-op", previous, err)
	}
	sendOK(t, s)
	sent := loadRow(t, s.App, id)
	got := fake.messages()
	if sent.State != "sent" || len(got) != 1 || got[0].MessageID != "<"+dead.MessageID+">" {
		t.Fatalf("after the run: %+v, %d messages", sent, len(got))
	}
	if _, err := outbox.Replay(s.App, id, "staff:abc", s.Clock.Now()); !errors.Is(err, outbox.ErrNotReplayable) {
		t.Errorf("replaying a sent email: %v, want ErrNotReplayable", err)
	}
	if _, err := outbox.Replay(s.App, "nosuchemail0000", "staff:abc", s.Clock.Now()); !errors.Is(err, outbox.ErrEmailNotFound) {
		t.Errorf("replaying an unknown email: %v, want ErrEmailNotFound", err)
	}
}

// POST /api/ops/emails/{id}/retry is for managers and admins. It is registered by
// bindOpsApi calling bindOutboxApi; until it does, this test skips.
func TestRetryRouteReplaysADeadEmailForManagersOnly(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:route"))
	fake.failNext("data", 554, "Rejected", 1)
	sendOK(t, s)

	manager := testkit.Token(t, s.App, "manager")
	if code, body := s.Call(t, "POST", "/api/ops/emails/"+id+"/retry", manager, ""); code != 200 {
		t.Fatalf("manager retry: %d %s", code, body)
	}
	// that replayed it; send it dead again for the table
	cases := []struct {
		name, token string
		before      func()
		status      int
		bodyPart    string
	}{
		{"no auth", "", nil, 401, ""},
		{"operator", testkit.Token(t, s.App, "operator"), nil, 403, "manager or an admin"},
		{"unknown id", manager, nil, 404, "No email with that id"},
		{"manager replays a dead email", manager, func() {
			fake.failNext("data", 554, "Rejected", 1)
			sendOK(t, s)
		}, 200, `"previous_state":"dead"`},
		{"a pending one is left as it is", manager, nil, 200, `"previous_state":"pending"`},
		{"a sent one cannot be retried", manager, func() { sendOK(t, s) }, 409, "this one is sent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			path := "/api/ops/emails/" + id + "/retry"
			if c.name == "unknown id" {
				path = "/api/ops/emails/nosuchemail0000/retry"
			}
			code, body := s.Call(t, "POST", path, c.token, "")
			if code != c.status || !strings.Contains(string(body), c.bodyPart) {
				t.Fatalf("status %d body %s, want %d with %q", code, body, c.status, c.bodyPart)
			}
			if code == 200 {
				var res map[string]any
				if err := json.Unmarshal(body, &res); err != nil || res["state"] != "pending" {
					t.Errorf("answer %s", body)
				}
			}
		})
	}
}

// In the admin UI, changing a dead email's state to pending is the replay action. It
// is bound by Bind calling bindOutboxActions; until it does, this test skips.
func TestAdminUIEditToPendingIsTheReplayAction(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:admin-ui"))
	fake.failNext("rcpt", 550, "No such user here", 1)
	sendOK(t, s)
	superuser := testkit.Token(t, s.App, "superuser")
	path := "/api/collections/email_outbox/records/" + id

	code, body := s.Call(t, "PATCH", path, superuser, `{"state":"pending"}`)
	events := testkit.Count(t, s.App, "ops_events", "entity_id = {:id} AND kind = 'email.replay_requested'", map[string]any{"id": id})
	if code != 200 || events != 1 {
		t.Fatalf("status %d body %s, %d replay events", code, body, events)
	}
	if row := loadRow(t, s.App, id); row.State != "pending" || row.Attempts != 0 {
		t.Fatalf("after the edit: %+v", row)
	}
	sendOK(t, s)
	if code, body := s.Call(t, "PATCH", path, superuser, `{"state":"pending"}`); code != 400 || !strings.Contains(string(body), "this one is sent") {
		t.Errorf("replaying a sent email from the admin UI: %d %s", code, body)
	}
}
