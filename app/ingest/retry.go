package ingest

import (
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// PendingGrace is how long a pending delivery is left to the live pipeline before the
// retry job takes it as abandoned (the process stopped after committing it).
const PendingGrace = 30 * time.Second

// DueDeliveries lists deliveries the retry job should process now: failed ones whose
// next attempt time has come and pending ones older than grace, oldest first.
func DueDeliveries(db dbx.Builder, now time.Time, grace time.Duration, limit int) ([]string, error) {
	var ids []string
	err := db.NewQuery(`SELECT id FROM webhook_inbox
		WHERE (status = 'failed' AND next_attempt_at <= {:now}) OR (status = 'pending' AND next_attempt_at <= {:abandoned})
		ORDER BY next_attempt_at LIMIT {:limit}`).Bind(dbx.Params{
		"now": sqlstore.FormatTime(now), "abandoned": sqlstore.FormatTime(now.Add(-grace)), "limit": limit,
	}).Column(&ids)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", err)
	}
	return ids, nil
}

// RequestReprocess puts one delivery back to pending with a fresh set of attempts and
// resolves its open dead letters, recording who asked. Any status but pending can be
// reprocessed: a processed order delivery applied again after a product was added
// picks the product up.
func RequestReprocess(app core.App, id, actor string, now time.Time) error {
	return app.RunInTransaction(func(txApp core.App) error {
		row, err := loadInboxRow(txApp.DB(), id)
		if err != nil {
			return ErrDeliveryNotFound
		}
		return markForReprocess(txApp.DB(), []inboxRow{row}, actor, now)
	})
}

// RequestReprocessSince puts every failed or dead delivery received since `since` back
// to pending (at most limit of them, oldest first) and returns their ids.
func RequestReprocessSince(app core.App, since time.Time, actor string, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := app.RunInTransaction(func(txApp core.App) error {
		var rows []inboxRow
		err := txApp.DB().NewQuery(`SELECT id, source, topic, shop_domain, webhook_id, status, attempts FROM webhook_inbox
			WHERE status IN ('failed','dead') AND received_at >= {:since} ORDER BY received_at LIMIT {:limit}`).
			Bind(dbx.Params{"since": sqlstore.FormatTime(since), "limit": limit}).All(&rows)
		if err != nil {
			return fmt.Errorf("list deliveries to reprocess: %w", err)
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
		return markForReprocess(txApp.DB(), rows, actor, now)
	})
	return ids, err
}

func markForReprocess(db dbx.Builder, rows []inboxRow, actor string, now time.Time) error {
	ts := sqlstore.FormatTime(now)
	for _, row := range rows {
		if row.Status == StatusPending {
			continue
		}
		if err := sqlstore.Update(db, "webhook_inbox", row.ID, now, dbx.Params{
			"status": StatusPending, "attempts": 0, "next_attempt_at": ts,
		}); err != nil {
			return err
		}
		if _, err := db.Update("dead_letters", dbx.Params{"resolved": true, "resolved_at": ts, "resolved_by": actor, "updated": ts},
			dbx.And(dbx.HashExp{"inbox": row.ID, "resolved": false}, dbx.NewExp("inbox != ''"))).Execute(); err != nil {
			return fmt.Errorf("resolve dead letters of %s: %w", row.ID, err)
		}
		if err := opsevents.Record(db, now, opsevents.Event{
			EntityType: "webhook", EntityID: row.ID, Kind: "webhook.reprocess_requested", Actor: actor,
			Message: fmt.Sprintf("Delivery %s (%s) was %s; reprocess requested", row.WebhookID, row.Topic, row.Status),
			Meta:    map[string]any{"previous_status": row.Status, "previous_attempts": row.Attempts},
		}); err != nil {
			return err
		}
	}
	return nil
}
