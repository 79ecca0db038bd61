package ingest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

type storedCustomer struct {
	ID        string `db:"id"`
	ShopifyID string `db:"shopify_customer_id"`
	UpdatedAt string `db:"shopify_updated_at"`
	Redacted  string `db:"redacted_at"`
}

// fields are where findCustomer's SELECT scans its columns, in their order.
func (c *storedCustomer) fields() []any {
	return []any{&c.ID, &c.ShopifyID, &c.UpdatedAt, &c.Redacted}
}

// findCustomer looks a customer up by Shopify id, else by email among customers
// that have no Shopify id yet (guest checkouts that later made an account).
func findCustomer(db dbx.Builder, shopID string, shopifyID shopify.ID, email string) (storedCustomer, bool, error) {
	var c storedCustomer
	const cols = `SELECT id, shopify_customer_id, shopify_updated_at, redacted_at FROM customers `
	if shopifyID != "" {
		// the != '' terms let SQLite use the partial indexes with a bound parameter
		err := sqlstore.QueryRow(db, cols+`WHERE shop = {:shop} AND shopify_customer_id = {:sid} AND shopify_customer_id != '' LIMIT 1`,
			dbx.Params{"shop": shopID, "sid": string(shopifyID)}, c.fields()...)
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return c, false, fmt.Errorf("find customer %s: %w", shopifyID, err)
		}
	}
	if email == "" {
		return c, false, nil
	}
	err := sqlstore.QueryRow(db, cols+`WHERE shop = {:shop} AND email = {:email} AND email != '' AND (shopify_customer_id = '' OR {:sid} = '')
		ORDER BY created LIMIT 1`,
		dbx.Params{"shop": shopID, "email": email, "sid": string(shopifyID)}, c.fields()...)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("find customer by email: %w", err)
	}
	return c, true, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func normaliseEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// upsertCustomer creates or updates the customer and returns its id. Older Shopify data
// never overwrites newer, and personal data is never written back onto an erased customer.
func upsertCustomer(c *applyContext, sc shopify.Customer, fallbackEmail string) (id string, created bool, redacted bool, err error) {
	email := normaliseEmail(deref(sc.Email))
	if email == "" {
		email = normaliseEmail(fallbackEmail)
	}
	if sc.ID == "" && email == "" {
		return "", false, false, nil
	}
	existing, found, err := findCustomer(c.db, c.shop.ID, sc.ID, email)
	if err != nil {
		return "", false, false, err
	}
	optIn := sc.AcceptsMarketing != nil && *sc.AcceptsMarketing
	if sc.EmailMarketing != nil {
		optIn = sc.EmailMarketing.State == "subscribed"
	}
	address := "null"
	if len(sc.DefaultAddress) > 0 && json.Valid(sc.DefaultAddress) {
		address = string(sc.DefaultAddress)
	}
	cols := dbx.Params{
		"shopify_customer_id": string(sc.ID),
		"email":               email,
		"first_name":          deref(sc.FirstName),
		"last_name":           deref(sc.LastName),
		"phone":               deref(sc.Phone),
		"default_address":     address,
		"marketing_opt_in":    optIn,
		"shopify_updated_at":  sqlstore.FormatTime(sc.UpdatedAt.Time),
	}
	if !found {
		cols["shop"] = c.shop.ID
		id, err := sqlstore.Insert(c.db, "customers", c.now, cols)
		return id, true, false, err
	}
	if existing.Redacted != "" {
		return existing.ID, false, true, nil
	}
	stored, err := sqlstore.ParseTime(existing.UpdatedAt)
	if err != nil {
		return "", false, false, err
	}
	if !sc.UpdatedAt.IsZero() && stored.After(sc.UpdatedAt.Time) {
		return existing.ID, false, false, nil // older data: keep the newer
	}
	if sc.ID == "" { // an order from a guest: only the email is known, keep the rest
		cols = dbx.Params{"email": email}
	}
	if sc.UpdatedAt.IsZero() {
		delete(cols, "shopify_updated_at")
	}
	return existing.ID, false, false, sqlstore.Update(c.db, "customers", existing.ID, c.now, cols)
}

func applyCustomer(c *applyContext, payload []byte) (applied, error) {
	var sc shopify.Customer
	if err := json.Unmarshal(payload, &sc); err != nil {
		return applied{}, permanent("customer payload is not valid: %v", err)
	}
	if sc.ID == "" {
		return applied{}, permanent("customer payload has no id")
	}
	id, created, redacted, err := upsertCustomer(c, sc, "")
	if err != nil {
		return applied{}, err
	}
	kind, msg := "customer.updated", "Customer %s updated from Shopify"
	if created {
		kind, msg = "customer.created", "Customer %s created from Shopify"
	}
	return applied{
		Status: StatusProcessed, ResourceID: customerResource(sc.ID), RedactPayload: redacted,
		Message: fmt.Sprintf(msg, sc.ID),
		Events:  []opsevents.Event{{EntityType: "customer", EntityID: id, Kind: kind, Message: fmt.Sprintf(msg, sc.ID)}},
	}, nil
}

func applyAppUninstalled(c *applyContext, _ []byte) (applied, error) {
	if err := sqlstore.Update(c.db, "shops", c.shop.ID, c.now, dbx.Params{"uninstalled_at": sqlstore.FormatTime(c.now)}); err != nil {
		return applied{}, err
	}
	msg := fmt.Sprintf("Shopify says the app was uninstalled from %s", c.shop.Domain)
	return applied{Status: StatusProcessed, Message: msg, ResourceID: "shop:" + c.shop.Domain,
		Events: []opsevents.Event{{EntityType: "shop", EntityID: c.shop.ID, Kind: "shop.uninstalled", Message: msg}}}, nil
}
