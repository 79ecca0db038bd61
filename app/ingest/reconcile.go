package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

// ReconcileOverlap is how far before a run's start the next run lists again, so an
// order updated while a run was listing, or stamped by a Shopify clock a little ahead
// of ours, is seen by the next run. Seeing an order twice costs nothing: it is up to date.
const ReconcileOverlap = 5 * time.Minute

// ReconcileTopic is the topic a reconciled order is stored and processed under.
const ReconcileTopic = "orders/updated"

// OrderLister lists a shop's orders updated since a time, page by page, each order as
// the exact JSON Shopify sent. *shopify.AdminClient is the production one.
type OrderLister interface {
	ListOrdersUpdatedSince(ctx context.Context, since time.Time, page func(orders []json.RawMessage) error) error
}

// ReconcileReport says what one reconciliation run found and did.
type ReconcileReport struct {
	Shop string
	// Since is the cursor the run listed from; SyncedTo the new cursor (zero when the
	// run did not get through every page and left the cursor alone).
	Since    time.Time
	SyncedTo time.Time
	// Skipped says why the run did nothing at all (the app is uninstalled).
	Skipped     string
	Fetched     int // orders Shopify listed
	Missing     int // not known here: created
	Newer       int // newer at Shopify: updated
	UpToDate    int // ours is as new or newer: left alone
	Failed      int // stored but processing failed (the inbox row is retried or dead-lettered)
	Pages       int
	RateLimited int // 429 answers waited out
}

// Reconcile asks Shopify (through client) for the shop's orders updated since its
// orders_synced_at cursor (or since now-lookback when it never synced) and feeds every
// order that is missing here, or newer at Shopify, through webhook_inbox and the
// Processor, exactly as a webhook would be. now is the run's start. Only when every
// page was listed and handled does the cursor move, to now-ReconcileOverlap; a failure
// part way leaves it, and the next run repeats the work (processing is idempotent).
// One ops_events row records each run that fetched anything.
func Reconcile(ctx context.Context, app core.App, proc *Processor, client OrderLister, shopDomain string, lookback time.Duration, now time.Time) (ReconcileReport, error) {
	rep := ReconcileReport{Shop: shopDomain}
	shop, err := FindShopByDomain(app.DB(), shopDomain)
	if err != nil {
		return rep, fmt.Errorf("reconcile %s: %w", shopDomain, err)
	}
	rep.Shop = shop.Domain
	uninstalled, err := shopUninstalledAt(app.DB(), shop.ID)
	if err != nil {
		return rep, fmt.Errorf("reconcile %s: %w", shop.Domain, err)
	}
	if !uninstalled.IsZero() {
		rep.Skipped = fmt.Sprintf("the app was uninstalled from %s at %s", shop.Domain, uninstalled.Format(time.RFC3339))
		return rep, nil
	}
	rep.Since = shop.OrdersSyncedAt
	if rep.Since.IsZero() {
		rep.Since = now.Add(-lookback)
	}

	stats := &shopify.CallStats{}
	listErr := client.ListOrdersUpdatedSince(shopify.WithCallStats(ctx, stats), rep.Since, func(orders []json.RawMessage) error {
		rep.Pages++
		for _, raw := range orders {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := reconcileOrder(app, proc, shop, raw, &rep); err != nil {
				return err
			}
		}
		return nil
	})
	rep.RateLimited = stats.RateLimited
	if listErr == nil {
		// Even when this is before the old cursor (a clock that jumped back): listing
		// again is harmless, skipping ahead is not.
		rep.SyncedTo = now.Add(-ReconcileOverlap)
	}
	if err := errors.Join(listErr, finishReconcile(app, proc.now(), shop, rep)); err != nil {
		return rep, fmt.Errorf("reconcile %s: %w", shop.Domain, err)
	}
	return rep, nil
}

// reconcileOrder compares one listed order with ours and, when it is missing or newer
// at Shopify, stores it in webhook_inbox and processes it at once.
func reconcileOrder(app core.App, proc *Processor, shop Shop, raw json.RawMessage, rep *ReconcileReport) error {
	rep.Fetched++
	var head struct {
		ID        shopify.ID   `json:"id"`
		UpdatedAt shopify.Time `json:"updated_at"`
	}
	readable := json.Unmarshal(raw, &head) == nil && head.ID != ""
	found := false
	if readable {
		local, ok, err := findOrder(app.DB(), shop.ID, head.ID)
		if err != nil {
			return err
		}
		if ok {
			stored, err := sqlstore.ParseTime(local.UpdatedAt)
			if err != nil {
				return err
			}
			// Stored times keep milliseconds: compare at that precision.
			if !head.UpdatedAt.Truncate(time.Millisecond).After(stored) {
				rep.UpToDate++
				return nil
			}
		}
		found = ok
	}
	// An unreadable order is stored too: processing dead-letters it where a person sees it.
	d := Delivery{
		Source: SourceReconcile, Topic: ReconcileTopic, ShopDomain: shop.Domain,
		WebhookID: reconcileWebhookID(head.ID, head.UpdatedAt.Time, raw), TriggeredAt: head.UpdatedAt.Time,
		Headers: map[string]string{}, Payload: raw,
	}
	id, _, err := StoreDelivery(app.DB(), d, proc.now())
	if err != nil {
		return err
	}
	res, err := proc.Process(id)
	if err != nil {
		return err
	}
	switch {
	case !readable || res.Status == StatusFailed || res.Status == StatusDead:
		rep.Failed++
	case res.Status == StatusSkipped: // a webhook brought the same or newer data meanwhile
		rep.UpToDate++
	case found:
		rep.Newer++
	default:
		rep.Missing++
	}
	return nil
}

// reconcileWebhookID keys a reconciled order by its id and updated_at, so the same
// version listed by two runs is stored once; an order without an id is keyed by its hash.
func reconcileWebhookID(id shopify.ID, updated time.Time, raw []byte) string {
	if id == "" {
		sum := sha256.Sum256(raw)
		return "reconcile:sha256:" + hex.EncodeToString(sum[:])
	}
	return fmt.Sprintf("reconcile:%s:%d", id, updated.UnixNano())
}

// finishReconcile moves the cursor (when the run finished) and writes the run's ops
// event (when it fetched anything), in one transaction.
func finishReconcile(app core.App, now time.Time, shop Shop, rep ReconcileReport) error {
	if rep.SyncedTo.IsZero() && rep.Fetched == 0 {
		return nil
	}
	return app.RunInTransaction(func(txApp core.App) error {
		db := txApp.DB()
		if !rep.SyncedTo.IsZero() {
			if err := sqlstore.Update(db, "shops", shop.ID, now, dbx.Params{"orders_synced_at": sqlstore.FormatTime(rep.SyncedTo)}); err != nil {
				return fmt.Errorf("move the cursor: %w", err)
			}
		}
		if rep.Fetched == 0 {
			return nil
		}
		outcome := "orders updated since " + rep.SyncedTo.Format(time.RFC3339) + " are next"
		if rep.SyncedTo.IsZero() {
			outcome = "stopped before the last page, so the next run lists from the same point again"
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "shop", EntityID: shop.ID, Kind: "shop.reconciled", Actor: opsevents.ActorSystem,
			Message: fmt.Sprintf("Reconciled %s orders updated since %s: fetched %d, %d missing, %d newer, %d up to date, %d failed; %s",
				shop.Domain, rep.Since.Format(time.RFC3339), rep.Fetched, rep.Missing, rep.Newer, rep.UpToDate, rep.Failed, outcome),
			Meta: map[string]any{
				"since": sqlstore.FormatTime(rep.Since), "synced_to": sqlstore.FormatTime(rep.SyncedTo),
				"fetched": rep.Fetched, "missing": rep.Missing, "newer": rep.Newer, "up_to_date": rep.UpToDate,
				"failed": rep.Failed, "pages": rep.Pages, "rate_limited": rep.RateLimited,
			},
		})
	})
}

func shopUninstalledAt(db dbx.Builder, shopID string) (time.Time, error) {
	var row struct {
		At string `db:"uninstalled_at"`
	}
	if err := db.NewQuery(`SELECT uninstalled_at FROM shops WHERE id = {:id}`).Bind(dbx.Params{"id": shopID}).One(&row); err != nil {
		return time.Time{}, fmt.Errorf("read uninstalled_at: %w", err)
	}
	return sqlstore.ParseTime(row.At)
}
