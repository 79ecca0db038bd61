package benchmark

import (
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// fillFast runs statements that generate rows in the database itself. A million rows
// inserted one by one into half a dozen indexes spend most of their time re-reading
// index pages, so the indexes of tables are dropped first and built again after the
// inserts (sorting once is far cheaper); then come the statements of after, which may
// need those indexes, ANALYZE, and a WAL checkpoint, so that the next opener (a child
// `serve`, a measurement) starts from a plain file. It runs on PocketBase's single
// nonconcurrent connection with a large page cache and no syncs: a bench database is
// thrown away if the machine stops.
func fillFast(app core.App, tables []string, inserts, after []string) error {
	db := app.NonconcurrentDB()
	for _, p := range []string{`PRAGMA cache_size = -262144`, `PRAGMA synchronous = OFF`} {
		if _, err := db.NewQuery(p).Execute(); err != nil {
			return fmt.Errorf("fill: %s: %w", p, err)
		}
	}
	defer db.NewQuery(`PRAGMA synchronous = NORMAL`).Execute()
	defer db.NewQuery(`PRAGMA cache_size = -2000`).Execute()

	indexes, err := dropIndexes(db, tables)
	if err != nil {
		return err
	}
	run := func(stmts []string) error {
		for _, q := range stmts {
			if _, err := db.NewQuery(q).Execute(); err != nil {
				return fmt.Errorf("fill: %w (%s)", err, strings.SplitN(strings.TrimSpace(q), "\n", 2)[0])
			}
		}
		return nil
	}
	if err := run(inserts); err != nil {
		return err
	}
	if err := run(indexes); err != nil {
		return err
	}
	return run(append(after, `ANALYZE`, `PRAGMA wal_checkpoint(TRUNCATE)`))
}

// dropIndexes drops every index of tables that a statement created and returns the
// statements that create them again.
func dropIndexes(db dbx.Builder, tables []string) ([]string, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	var rows []struct {
		Name string `db:"name"`
		SQL  string `db:"sql"`
	}
	in := make([]any, len(tables))
	for i, t := range tables {
		in[i] = t
	}
	if err := db.Select("name", "sql").From("sqlite_master").
		Where(dbx.NewExp("type = 'index' AND sql IS NOT NULL")).AndWhere(dbx.In("tbl_name", in...)).All(&rows); err != nil {
		return nil, fmt.Errorf("fill: list indexes: %w", err)
	}
	var create []string
	for _, r := range rows {
		if _, err := db.NewQuery("DROP INDEX " + db.QuoteSimpleTableName(r.Name)).Execute(); err != nil {
			return nil, fmt.Errorf("fill: drop index %s: %w", r.Name, err)
		}
		create = append(create, r.SQL)
	}
	return create, nil
}

// series is the start of a statement generating rows for i in [from, to] (to below from
// generates none).
func series(from, to int) string {
	return fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT %d WHERE %d <= %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)\n", from, from, to, to)
}

// pbTime is SQL for the PocketBase date of unix seconds expr.
func pbTime(expr string) string {
	return fmt.Sprintf("strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %s, 'unixepoch')", expr)
}

// spreadOver90Days is SQL for row i of rows as unix seconds, newest first, the oldest
// 90 days before now.
func spreadOver90Days(now time.Time, rows int) string {
	span := int64(90 * 24 * time.Hour / time.Second)
	return fmt.Sprintf("(%d - (%d * i / %d))", now.Unix(), span, max(rows, 1))
}

// historyShape is the shop and the mix of the order history a fill writes.
type historyShape struct {
	// Shop is the orders' shop record id, ShopDomain the inbox rows' shop.
	Shop, ShopDomain string
	// Customers is how many customers the orders belong to (0: none set).
	Customers int
	// ProblemDeliveries mixes a few pending, failed and dead deliveries into the inbox
	// (for the checks); without it every delivery was processed, as a served shop's
	// history is (a live child would retry the others).
	ProblemDeliveries bool
}

// ordersSQL writes rows orders o00000000000001… spread over 90 days: almost all paid,
// a tenth pending, a fiftieth cancelled.
func ordersSQL(rows int, now time.Time, h historyShape) string {
	at := pbTime(spreadOver90Days(now, rows))
	customer := "''"
	if h.Customers > 0 {
		customer = fmt.Sprintf("printf('c%%014d', 1 + i %% %d)", h.Customers)
	}
	return series(1, rows) + fmt.Sprintf(`INSERT INTO orders (id, shop, shopify_order_id, order_number, customer, status, currency, total_minor,
		 shopify_created_at, shopify_updated_at, created, updated)
		SELECT printf('o%%014d', i), %s, CAST(i AS TEXT), CAST(1000 + i AS TEXT), %s,
		 CASE WHEN i %% 50 = 0 THEN 'cancelled' WHEN i %% 10 = 0 THEN 'pending' ELSE 'paid' END, 'GBP', 2000 + i %% 5000,
		 %s, %s, %s, %s FROM n`, quote(h.Shop), customer, at, at, at, at)
}

// customersSQL writes the customers ordersSQL refers to.
func customersSQL(n int, h historyShape) string {
	return series(1, n) + fmt.Sprintf(`INSERT INTO customers (id, shop, shopify_customer_id, email, first_name, last_name, created, updated)
		SELECT printf('c%%014d', i), %s, CAST(i AS TEXT), 'customer.' || i || '@example.com', 'Jane', 'Doe', '', '' FROM n`, quote(h.Shop))
}

// orderItemsSQL writes one line item per order of ordersSQL.
func orderItemsSQL(rows int) string {
	return series(1, rows) + `INSERT INTO order_items (id, "order", shopify_line_item_id, sku, title, quantity, current_quantity,
		 unit_price_minor, unknown_sku, created, updated)
		SELECT printf('i%014d', i), printf('o%014d', i), 'li' || i, 'PR-BEEF-2KG', 'Raw Beef Complete', 2, 2, 2400, 0, '', '' FROM n`
}

// inboxSQL writes the deliveries the orders of ordersSQL came in, with '{}' payloads
// (old payloads are what a shop's database holds least of in its pages that matter).
func inboxSQL(rows int, now time.Time, h historyShape) string {
	at := spreadOver90Days(now, rows)
	status := "'processed'"
	if h.ProblemDeliveries {
		status = `CASE WHEN i % 100000 = 1 THEN 'pending' WHEN i % 20000 = 2 THEN 'failed' WHEN i % 50000 = 3 THEN 'dead' ELSE 'processed' END`
	}
	return series(1, rows) + fmt.Sprintf(`INSERT INTO webhook_inbox (id, source, topic, shop_domain, webhook_id, payload, status, attempts,
		 received_at, processed_at, processing_ms, next_attempt_at, resource_id, created, updated)
		SELECT printf('w%%014d', i), 'shopify_webhook', 'orders/create', %s, 'wh-' || i, '{}', %s, 1,
		 %s, %s, 3 + i %% 40, %s, 'order:' || i, '', '' FROM n`,
		quote(h.ShopDomain), status, pbTime(at), pbTime(at+" + 1"), pbTime(at))
}

// opsEventsSQL writes the ops event processing wrote for each order of ordersSQL.
func opsEventsSQL(rows int, now time.Time) string {
	at := pbTime(spreadOver90Days(now, rows))
	return series(1, rows) + fmt.Sprintf(`INSERT INTO ops_events (id, entity_type, entity_id, kind, message, actor, meta, created, updated)
		SELECT printf('e%%014d', i), 'order', printf('o%%014d', i), 'order.created', 'Order created from Shopify', 'shopify', '{}', %s, %s FROM n`, at, at)
}

// monitoringRunsSQL writes rows job runs shared by benchJobs jobs, a 97th of them errors.
func monitoringRunsSQL(rows int, now time.Time) string {
	at := pbTime(spreadOver90Days(now, rows))
	return series(1, rows) + fmt.Sprintf(`INSERT INTO monitoring_runs (id, name, kind, outcome, started_at, finished_at, duration_ms, created, updated)
		SELECT printf('m%%014d', i), 'bench-job-' || (i %% %d), 'job', CASE WHEN i %% 97 = 0 THEN 'error' ELSE 'ok' END,
		 %s, %s, 12, '', '' FROM n`, benchJobs, at, at)
}

// stockSQL writes products bench products and batches batches with their production
// movements. Batch i belongs to product i % products; its expiry runs from 200 days ago
// to 200 days ahead with i; a 97th is on QA hold, the rest released with 10,000 units;
// its public id is benchPublicID(i).
func stockSQL(products, batches int) []string {
	day := int64(24 * time.Hour / time.Second)
	nowUnix := time.Now().UTC().Unix()
	ts := "strftime('%Y-%m-%d %H:%M:%S.000Z', 'now')"
	return []string{
		series(0, products-1) + fmt.Sprintf(`INSERT INTO products (id, sku, name, active, not_batch_tracked, storage_instructions, created, updated)
		SELECT printf('bp%%013d', i), printf('BENCH-%%03d', i), 'Bench product', 1, 0, 'Keep frozen at -18 °C or below', %s, %s FROM n`, ts, ts),
		series(0, batches-1) + fmt.Sprintf(`INSERT INTO batches (id, code, public_id, product, produced_at, quantity_units, expiry_date, status, on_hand, allocated, created, updated)
		SELECT printf('bb%%013d', i), printf('B-%%06d', i), printf('benchbatch%%010d', i), printf('bp%%013d', i %% %d),
		 strftime('%%Y-%%m-%%d 12:00:00.000Z', %d + (i * 400 / %d - 380) * %d, 'unixepoch'), 10000,
		 strftime('%%Y-%%m-%%d 12:00:00.000Z', %d + (i * 400 / %d - 200) * %d, 'unixepoch'),
		 CASE WHEN i %% 97 = 7 THEN 'qa_hold' ELSE 'released' END, 10000, 0, %s, %s FROM n`,
			products, nowUnix, batches, day, nowUnix, batches, day, ts, ts),
		`INSERT INTO inventory_movements (id, batch, product, type, quantity, before, after, reference, "order", actor, reason, created, updated)
		 SELECT 'pm' || substr(id, 3), id, product, 'production', 10000, 0, 10000, 'batch:' || id, '', 'bench', 'produced', created, created FROM batches`,
	}
}

// benchPublicID is the public id stockSQL gives batch i.
func benchPublicID(i int) string { return fmt.Sprintf("benchbatch%010d", i) }

// releasedBatch says whether stockSQL released batch i (the others are on QA hold).
func releasedBatch(i int) bool { return i%97 != 7 }

// labResultsSQL writes a passing lab result for every released batch.
func labResultsSQL() string {
	ts := "strftime('%Y-%m-%d %H:%M:%S.000Z', 'now')"
	return fmt.Sprintf(`INSERT INTO lab_results (id, batch, lab, salmonella, listeria, enterobacteriaceae_tested, enterobacteriaceae_cfu_per_g,
		 other_tests, outcome, reported_at, created, updated)
		SELECT 'lr' || substr(id, 3), id, 'Bench Lab', 'absent', 'absent', 1, 40,
		 '[{"name":"Total viable count","result":12000,"unit":"cfu/g","limit":500000,"pass":true}]', 'pass', %s, %s, %s
		FROM batches WHERE status = 'released'`, ts, ts, ts)
}

// quote is s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
