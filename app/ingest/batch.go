package ingest

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/sqlstore"
)

// batch is what the deliveries sharing one ProcessBatch transaction share: the
// transaction's prepared statements, and the rows they all read but processing never
// writes (the shop, products by SKU), read once per transaction instead of once per
// delivery. Neither cache can go stale inside the transaction: it holds SQLite's only
// writer, and no delivery changes a shop's id, domain, secrets or prefix, or a product.
type batch struct {
	txApp    core.App
	db       dbx.Builder // txApp.DB() with prepared statements
	shops    map[string]Shop
	products map[string]string // product id by SKU, "" for a SKU no product has
}

func (p *Processor) newBatch(txApp core.App) *batch {
	return &batch{
		txApp:    txApp,
		db:       p.statements.Begin(txApp.DB()),
		shops:    map[string]Shop{},
		products: map[string]string{},
	}
}

// shop is FindShopByDomain, once per domain and transaction.
func (b *batch) shop(domain string) (Shop, error) {
	if s, ok := b.shops[domain]; ok {
		return s, nil
	}
	s, err := FindShopByDomain(b.db, domain)
	if err == nil {
		b.shops[domain] = s
	}
	return s, err
}

// productBySKU returns the id of the product with this SKU, "" when there is none.
func (b *batch) productBySKU(sku string) (string, error) {
	if sku == "" {
		return "", nil
	}
	if id, ok := b.products[sku]; ok {
		return id, nil
	}
	var id string
	err := sqlstore.QueryRow(b.db, `SELECT id FROM products WHERE sku = {:sku}`, dbx.Params{"sku": sku}, &id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("match SKU %q: %w", sku, err)
	}
	b.products[sku] = id
	return id, nil
}
