package outbox

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

// Replay puts a failed or dead email back to pending with a fresh set of attempts, for
// the next run of the sender, and records who asked. It keeps the Message-ID, so a
// mailbox that already holds the email can tell the copy is the same message. A
// pending email is left as it is; a sending or sent one is ErrNotReplayable.
func Replay(app core.App, id, actor string, now time.Time) (previous string, err error) {
	err = app.RunInTransaction(func(txApp core.App) error {
		var row struct {
			State          string `db:"state"`
			Attempts       int    `db:"attempts"`
			IdempotencyKey string `db:"idempotency_key"`
			LastError      string `db:"last_error"`
		}
		db := txApp.DB()
		err := db.NewQuery(`SELECT state, attempts, idempotency_key, last_error FROM email_outbox WHERE id = {:id}`).
			Bind(dbx.Params{"id": id}).One(&row)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrEmailNotFound
		}
		if err != nil {
			return fmt.Errorf("outbox: replay email %s: %w", id, err)
		}
		previous = row.State
		switch row.State {
		case StatePending:
			return nil
		case StateFailed, StateDead:
		default:
			return fmt.Errorf("%w (this one is %s)", ErrNotReplayable, row.State)
		}
		ts := sqlstore.FormatTime(now)
		if err := sqlstore.Update(db, collection, id, now, dbx.Params{
			"state": StatePending, "attempts": 0, "next_attempt_at": ts, "claimed_at": "", "data_started_at": "",
		}); err != nil {
			return err
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "email", EntityID: id, Kind: "email.replay_requested", Actor: actor,
			Message: fmt.Sprintf("Email %s was %s; replay requested", row.IdempotencyKey, row.State),
			Meta:    map[string]any{"previous_state": row.State, "previous_attempts": row.Attempts, "last_error": truncate(row.LastError, 500)},
		})
	})
	return previous, err
}
