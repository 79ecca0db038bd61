package ingest

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// Shop is what ingestion needs of a shops row.
type Shop struct {
	ID                string
	Domain            string
	Secrets           []string
	OrderNumberPrefix string
	OrdersSyncedAt    time.Time
}

// ErrUnknownShop is returned for a domain that is not in shops.
var ErrUnknownShop = errors.New("unknown shop")

// FindShopByDomain returns the shop with this myshopify domain, or ErrUnknownShop.
func FindShopByDomain(db dbx.Builder, domain string) (Shop, error) {
	var row struct {
		ID      string `db:"id"`
		Domain  string `db:"domain"`
		Secrets string `db:"webhook_secrets"`
		Prefix  string `db:"order_number_prefix"`
		Synced  string `db:"orders_synced_at"`
	}
	err := db.NewQuery(`SELECT id, domain, webhook_secrets, order_number_prefix, orders_synced_at
		FROM shops WHERE domain = {:domain} LIMIT 1`).
		Bind(dbx.Params{"domain": strings.ToLower(strings.TrimSpace(domain))}).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return Shop{}, ErrUnknownShop
	}
	if err != nil {
		return Shop{}, fmt.Errorf("find shop %q: %w", domain, err)
	}
	synced, err := sqlstore.ParseTime(row.Synced)
	if err != nil {
		return Shop{}, err
	}
	return Shop{ID: row.ID, Domain: row.Domain, Secrets: SplitSecrets(row.Secrets),
		OrderNumberPrefix: row.Prefix, OrdersSyncedAt: synced}, nil
}

// SplitSecrets reads a comma-separated list of webhook secrets.
func SplitSecrets(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// EnsureShop creates the shop with this domain or updates its secrets (and prefix, when
// given): how OPSPINE_SHOPIFY_SHOP_DOMAIN and OPSPINE_SHOPIFY_WEBHOOK_SECRET take effect at start.
func EnsureShop(app core.App, domain string, secrets []string, prefix string) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	return app.RunInTransaction(func(txApp core.App) error {
		col, err := txApp.FindCollectionByNameOrId("shops")
		if err != nil {
			return err
		}
		rec, err := txApp.FindFirstRecordByData(col, "domain", domain)
		kind := "shop.secrets_updated"
		if errors.Is(err, sql.ErrNoRows) {
			rec = core.NewRecord(col)
			rec.Set("domain", domain)
			rec.Set("name", strings.TrimSuffix(domain, ".myshopify.com"))
			kind = "shop.created"
		} else if err != nil {
			return err
		}
		joined := strings.Join(secrets, ",")
		if rec.GetString("webhook_secrets") == joined && (prefix == "" || rec.GetString("order_number_prefix") == prefix) && !rec.IsNew() {
			return nil
		}
		rec.Set("webhook_secrets", joined)
		if prefix != "" {
			rec.Set("order_number_prefix", prefix)
		}
		if err := txApp.Save(rec); err != nil {
			return fmt.Errorf("save shop %s: %w", domain, err)
		}
		return opsevents.Record(txApp.DB(), time.Now(), opsevents.Event{
			EntityType: "shop", EntityID: rec.Id, Kind: kind, Actor: opsevents.ActorSystem,
			Message: fmt.Sprintf("Shop %s configured from the environment with %d webhook secret(s)", domain, len(secrets)),
		})
	})
}
