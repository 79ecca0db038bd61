package alerts

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// Errors of the staff actions.
var (
	ErrAlertNotFound        = errors.New("no such alert")
	ErrNotificationNotFound = errors.New("no such alert notification")
	ErrAlreadySent          = errors.New("the message was delivered already")
	ErrBeingSent            = errors.New("the message is being sent right now")
)

// ResolveAlertByHand closes an open alert for a person (actor "staff:<id>"): the same
// resolved message as Resolve and an ops event saying who. Resolving a resolved alert
// does nothing. If the condition persists, the check's next run opens a new alert.
func ResolveAlertByHand(app core.App, now time.Time, id, actor string) error {
	now = now.UTC()
	return app.RunInTransaction(func(txApp core.App) error {
		db := txApp.DB()
		cur, found, err := findAlertByID(db, id)
		if err != nil {
			return err
		}
		if !found {
			return ErrAlertNotFound
		}
		if cur.State != StateOpen {
			return nil
		}
		if err := resolve(db, now, cur); err != nil {
			return fmt.Errorf("resolve alert %s: %w", id, err)
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "alert", EntityID: id, Kind: "alert.resolved_by_hand", Actor: actor,
			Message: fmt.Sprintf("Alert %q (%s) was resolved by hand", truncate(cur.Title, 150), cur.DedupeKey),
			Meta:    map[string]any{"dedupe_key": cur.DedupeKey, "source_check": cur.SourceCheck, "occurrences": cur.Occurrences},
		})
	})
}

// RequeueNotification puts a dead or failed notification back in the queue with a
// fresh set of attempts (after a Slack URL was fixed, say), recording who asked.
// A pending one is left as it is; a sent one is refused with ErrAlreadySent, and one
// being sent (until alert-deliver settles it) with ErrBeingSent.
func RequeueNotification(app core.App, now time.Time, id, actor string) error {
	now = now.UTC()
	return app.RunInTransaction(func(txApp core.App) error {
		db := txApp.DB()
		var row struct {
			State    string `db:"state"`
			Title    string `db:"title"`
			Attempts int    `db:"attempts"`
			Error    string `db:"last_error"`
		}
		err := db.NewQuery(`SELECT state, title, attempts, last_error FROM alert_notifications WHERE id = {:id}`).
			Bind(dbx.Params{"id": id}).One(&row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotificationNotFound
		case err != nil:
			return fmt.Errorf("requeue alert notification %s: %w", id, err)
		case row.State == NotificationSent:
			return ErrAlreadySent
		case row.State == NotificationPending:
			return nil
		case row.State == NotificationSending:
			return ErrBeingSent
		}
		if err := sqlstore.Update(db, "alert_notifications", id, now, dbx.Params{
			"state": NotificationPending, "attempts": 0, "next_attempt_at": sqlstore.FormatTime(now),
		}); err != nil {
			return err
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "alert_notification", EntityID: id, Kind: "alert.delivery_requeued", Actor: actor,
			Message: fmt.Sprintf("Slack message %q was %s; sending requested again", truncate(row.Title, 150), row.State),
			Meta:    map[string]any{"previous_state": row.State, "previous_attempts": row.Attempts, "previous_error": truncate(row.Error, 300)},
		})
	})
}
