package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

// ShopifyReconcile asks the Shopify Admin API for the configured shop's orders updated
// since the last successful sync and feeds those missing here, or newer at Shopify,
// through webhook_inbox and the same processing as webhooks (Shopify does not promise
// to deliver every webhook). now is the scheduler's clock.
func ShopifyReconcile(app core.App, proc *ingest.Processor, cfg config.Config, now func() time.Time) Job {
	client := adminClient(cfg)
	return Job{
		Name: "shopify-reconcile", Schedule: cfg.ReconcileSchedule, Timeout: 10 * time.Minute,
		Run: func(ctx context.Context) (Outcome, error) {
			if cfg.ShopifyShopDomain == "" {
				return Outcome{}, errors.New("OPSPINE_SHOPIFY_SHOP_DOMAIN is not set, so there is no shop to reconcile")
			}
			rep, err := ingest.Reconcile(ctx, app, proc, client, cfg.ShopifyShopDomain, cfg.ReconcileLookback, now().UTC())
			return Outcome{Summary: reconcileSummary(rep, err), Figures: reconcileFigures(rep)}, err
		},
	}
}

// adminClient is the Admin API client for the configured shop:
// OPSPINE_SHOPIFY_ADMIN_BASE_URL, or https://<shop domain>.
func adminClient(cfg config.Config) *shopify.AdminClient {
	base := cfg.ShopifyAdminBaseURL
	if base == "" {
		base = "https://" + cfg.ShopifyShopDomain
	}
	return &shopify.AdminClient{
		BaseURL: base, Token: cfg.ShopifyAdminToken, APIVersion: cfg.ShopifyAPIVersion,
		HTTP: &http.Client{Timeout: shopify.DefaultHTTPTimeout},
	}
}

// reconcileSummary reads like "fetched 12 orders in 2 pages: 3 missing, 1 newer, 8 up to date".
func reconcileSummary(rep ingest.ReconcileReport, err error) string {
	if rep.Skipped != "" {
		return "skipped: " + rep.Skipped
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fetched %s in %s: %d missing, %d newer, %d up to date",
		plural(rep.Fetched, "order"), plural(rep.Pages, "page"), rep.Missing, rep.Newer, rep.UpToDate)
	if rep.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed (left in webhook_inbox)", rep.Failed)
	}
	if rep.RateLimited > 0 {
		fmt.Fprintf(&b, "; waited out %s", plural(rep.RateLimited, "rate limit"))
	}
	if err != nil {
		b.WriteString("; stopped early, the cursor is unchanged")
	}
	return b.String()
}

func reconcileFigures(rep ingest.ReconcileReport) map[string]any {
	return map[string]any{
		"fetched": rep.Fetched, "missing": rep.Missing, "newer": rep.Newer, "up_to_date": rep.UpToDate,
		"pages": rep.Pages, "rate_limited": rep.RateLimited, "failed": rep.Failed,
		"since": sqlstore.FormatTime(rep.Since), "synced_to": sqlstore.FormatTime(rep.SyncedTo),
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
