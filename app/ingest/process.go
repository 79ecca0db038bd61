package ingest

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/sqlstore"
)

// OrderChange is an order's status change, seen inside the transaction that made it.
type OrderChange struct {
	OrderID        string
	ShopifyOrderID string
	From           string // "" for a new order
	To             string
}

// OrderHook runs inside the processing transaction when an order's status changes;
// later features (allocation when an order becomes paid) bind here. An error rolls the
// whole delivery back and it is retried.
type OrderHook func(txApp core.App, change OrderChange) error

// Processor turns committed deliveries into customers, orders and line items.
type Processor struct {
	App         core.App
	MaxAttempts int
	Backoff     retry.Backoff
	// Now is the clock; nil is time.Now.
	Now        func() time.Time
	orderHooks []OrderHook
}

// OnOrderChange adds a hook run on every order status change.
func (p *Processor) OnOrderChange(h OrderHook) { p.orderHooks = append(p.orderHooks, h) }

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// Result says what processing did to one delivery.
type Result struct {
	ID       string `json:"id"`
	Topic    string `json:"topic"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Message  string `json:"message,omitempty"`
	Error    string `json:"error,omitempty"`
}

type inboxRow struct {
	ID         string `db:"id"`
	Source     string `db:"source"`
	Topic      string `db:"topic"`
	ShopDomain string `db:"shop_domain"`
	WebhookID  string `db:"webhook_id"`
	Payload    string `db:"payload"`
	Status     string `db:"status"`
	Attempts   int    `db:"attempts"`
	LastError  string `db:"last_error"`
}

func loadInboxRow(db dbx.Builder, id string) (inboxRow, error) {
	var row inboxRow
	err := db.NewQuery(`SELECT id, source, topic, shop_domain, webhook_id, payload, status, attempts, last_error
		FROM webhook_inbox WHERE id = {:id}`).Bind(dbx.Params{"id": id}).One(&row)
	return row, err
}

// ErrDeliveryNotFound is returned for an inbox id that does not exist.
var ErrDeliveryNotFound = errors.New("no such delivery in webhook_inbox")

// settled statuses are final until a person asks for a reprocess.
func settled(status string) bool {
	return status == StatusProcessed || status == StatusSkipped || status == StatusDead
}

// Process handles one committed delivery: in one transaction it applies the payload,
// writes its ops_events rows and marks the inbox row processed (or skipped). A
// permanent error sends it to dead_letters; a transient one leaves it failed with a
// next attempt time, and after MaxAttempts it becomes dead. Processing a settled
// delivery again does nothing, so it is safe to call from several places at once.
func (p *Processor) Process(id string) (Result, error) {
	row, err := loadInboxRow(p.App.DB(), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Result{ID: id}, ErrDeliveryNotFound
	}
	if err != nil {
		return Result{ID: id}, fmt.Errorf("process delivery %s: %w", id, err)
	}
	if settled(row.Status) {
		return Result{ID: id, Topic: row.Topic, Status: row.Status, Attempts: row.Attempts, Message: "already " + row.Status}, nil
	}
	started := p.now()
	var done applied
	err = p.App.RunInTransaction(func(txApp core.App) (err error) {
		defer func() {
			// a bug in a handler rolls back this delivery and leaves it to the retries,
			// instead of taking the process (and every other delivery) down
			if r := recover(); r != nil {
				err = fmt.Errorf("panic while processing %s: %v", row.Topic, r)
			}
		}()
		current, err := loadInboxRow(txApp.DB(), id)
		if err != nil {
			return err
		}
		if settled(current.Status) {
			done = applied{Status: current.Status, Message: "already " + current.Status, noop: true}
			return nil
		}
		c := &applyContext{tx: txApp, db: txApp.DB(), now: started, row: current, proc: p}
		if done, err = c.apply(); err != nil {
			return err
		}
		return c.finish(done, started)
	})
	res := Result{ID: id, Topic: row.Topic, Status: done.Status, Attempts: row.Attempts + 1, Message: done.Message}
	if done.noop {
		res.Attempts = row.Attempts
	}
	if err == nil {
		return res, nil
	}
	res.Error = err.Error()
	if IsPermanent(err) {
		res.Status = StatusDead
		return res, p.deadLetter(row, err.Error(), started)
	}
	res.Status, err = p.fail(row, err, started)
	return res, err
}

// fail records a transient failure: failed with a backoff, or dead after the last attempt.
func (p *Processor) fail(row inboxRow, cause error, started time.Time) (string, error) {
	attempts := row.Attempts + 1
	if attempts >= p.MaxAttempts {
		reason := fmt.Sprintf("gave up after %d attempts: %v", attempts, cause)
		return StatusDead, p.deadLetter(row, reason, started)
	}
	now := p.now()
	err := sqlstore.Update(p.App.DB(), "webhook_inbox", row.ID, now, dbx.Params{
		"status":          StatusFailed,
		"attempts":        attempts,
		"last_error":      cause.Error(),
		"next_attempt_at": sqlstore.FormatTime(now.Add(p.Backoff.Delay(attempts))),
		"processing_ms":   now.Sub(started).Milliseconds(),
	})
	if err != nil {
		return StatusFailed, fmt.Errorf("record failure of delivery %s (%v): %w", row.ID, cause, err)
	}
	return StatusFailed, nil
}

// deadLetter marks the delivery dead and files it in dead_letters for a person.
func (p *Processor) deadLetter(row inboxRow, reason string, started time.Time) error {
	now := p.now()
	return p.App.RunInTransaction(func(txApp core.App) error {
		db := txApp.DB()
		if err := sqlstore.Update(db, "webhook_inbox", row.ID, now, dbx.Params{
			"status":        StatusDead,
			"attempts":      row.Attempts + 1,
			"last_error":    reason,
			"processed_at":  sqlstore.FormatTime(now),
			"processing_ms": now.Sub(started).Milliseconds(),
		}); err != nil {
			return err
		}
		letterID, err := sqlstore.Insert(db, "dead_letters", now, dbx.Params{
			"source": row.Source, "inbox": row.ID, "topic": row.Topic, "shop_domain": row.ShopDomain,
			"reason": reason, "payload": row.Payload, "attempts": row.Attempts + 1, "resolved": false,
		})
		if err != nil {
			return err
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "webhook", EntityID: row.ID, Kind: "webhook.dead_lettered", Actor: opsevents.ActorSystem,
			Message: fmt.Sprintf("Delivery %s (%s) needs a person: %s", row.WebhookID, row.Topic, truncate(reason, 300)),
			Meta:    map[string]any{"dead_letter": letterID, "topic": row.Topic, "shop": row.ShopDomain},
		})
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
