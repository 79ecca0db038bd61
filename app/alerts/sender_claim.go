package alerts

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// claim takes a listed notification for one request to Slack: sending, with the claim
// time, committed before the request. False when it is no longer due (a person changed
// it since it was listed).
func (s *Sender) claim(n notificationRow) (bool, error) {
	now := sqlstore.FormatTime(s.now())
	res, err := s.App.DB().NewQuery(`UPDATE alert_notifications SET state = 'sending', claimed_at = {:now}, updated = {:now}
		WHERE id = {:id} AND state = {:state}`).Bind(dbx.Params{"id": n.ID, "state": n.State, "now": now}).Execute()
	if err != nil {
		return false, fmt.Errorf("claim alert notification %s: %w", n.ID, err)
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

// unclaim gives a notification back to the queue as it was, for a request a shutdown
// cut short.
func (s *Sender) unclaim(n notificationRow) error {
	_, err := s.App.DB().NewQuery(`UPDATE alert_notifications SET state = {:state}, claimed_at = '', updated = {:now}
		WHERE id = {:id} AND state = 'sending'`).
		Bind(dbx.Params{"id": n.ID, "state": n.State, "now": sqlstore.FormatTime(s.now())}).Execute()
	if err != nil {
		return fmt.Errorf("give alert notification %s back to the queue: %w", n.ID, err)
	}
	return nil
}

// abandonStuck settles the notifications a stopped process left in sending for longer
// than a request can last (three client timeouts, at least a minute): Slack may have
// posted them and has no idempotency key, so each is dead with that explanation and an
// ops event, never sent again by itself. A person who finds it missing from the channel
// sets it back to pending.
func (s *Sender) abandonStuck(requestTimeout time.Duration) (int, error) {
	before := s.now().Add(-max(3*requestTimeout, time.Minute))
	var rows []notificationRow
	err := s.App.DB().NewQuery(`SELECT id, alert, kind, channel, state, title, payload, attempts FROM alert_notifications
		WHERE state = 'sending' AND claimed_at <= {:before} ORDER BY created, rowid`).
		Bind(dbx.Params{"before": sqlstore.FormatTime(before)}).All(&rows)
	if err != nil {
		return 0, fmt.Errorf("list alert notifications left in sending: %w", err)
	}
	for _, n := range rows {
		reason := "opspine stopped while this message was being sent to Slack, so it may have arrived: " +
			"check the channel, and set the state to pending to send it again only if it is missing"
		if _, err := s.record(n, []byte(n.Payload), attempt{permanent: true, problem: reason}); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}
