package inventory

import (
	"fmt"
	"math"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// BatchStock is one batch's stock as staff see it.
type BatchStock struct {
	BatchID      string `json:"batch"`
	Code         string `json:"batch_code"`
	Status       string `json:"status"`
	ExpiryDate   string `json:"expiry_date"`
	UseBy        string `json:"use_by"`
	DaysToExpiry *int   `json:"days_to_expiry"`
	OnHand       int    `json:"on_hand"`
	Allocated    int    `json:"allocated"`
	Available    int    `json:"available"`
}

// ProductStock is a product's stock: totals over its batches with stock, and the batches.
type ProductStock struct {
	ProductID       string       `json:"product"`
	SKU             string       `json:"sku"`
	Name            string       `json:"name"`
	NotBatchTracked bool         `json:"not_batch_tracked"`
	OnHand          int          `json:"on_hand"`
	Allocated       int          `json:"allocated"`
	Available       int          `json:"available"`
	Batches         []BatchStock `json:"batches"`
}

// FindStockByProduct lists every product with its batches that have units on hand or
// allocated, first expiry first; sku, when not empty, keeps one product.
func (a *Allocator) FindStockByProduct(db dbx.Builder, sku string) ([]ProductStock, error) {
	var rows []struct {
		Product    string `db:"product"`
		SKU        string `db:"sku"`
		Name       string `db:"name"`
		NotTracked bool   `db:"not_batch_tracked"`
		Batch      string `db:"batch"`
		Code       string `db:"code"`
		Status     string `db:"status"`
		Expiry     string `db:"expiry_date"`
		OnHand     int    `db:"on_hand"`
		Allocated  int    `db:"allocated"`
	}
	err := db.NewQuery(`SELECT p.id AS product, p.sku, p.name, p.not_batch_tracked, COALESCE(b.id, '') AS batch,
		COALESCE(b.code, '') AS code, COALESCE(b.status, '') AS status, COALESCE(b.expiry_date, '') AS expiry_date,
		COALESCE(b.on_hand, 0) AS on_hand, COALESCE(b.allocated, 0) AS allocated
		FROM products p LEFT JOIN batches b ON b.product = p.id AND (b.on_hand > 0 OR b.allocated > 0)
		WHERE {:sku} = '' OR p.sku = {:sku}
		ORDER BY p.sku, b.expiry_date, b.produced_at, b.code`).Bind(dbx.Params{"sku": sku}).All(&rows)
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	today := a.today()
	var out []ProductStock
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].ProductID != r.Product {
			out = append(out, ProductStock{ProductID: r.Product, SKU: r.SKU, Name: r.Name, NotBatchTracked: r.NotTracked, Batches: []BatchStock{}})
		}
		if r.Batch == "" {
			continue
		}
		p := &out[len(out)-1]
		b := BatchStock{BatchID: r.Batch, Code: r.Code, Status: r.Status, ExpiryDate: r.Expiry, OnHand: r.OnHand,
			Allocated: r.Allocated, Available: r.OnHand - r.Allocated}
		if t, err := sqlstore.ParseTime(r.Expiry); err == nil && !t.IsZero() {
			local := t.In(a.tz())
			b.UseBy = local.Format("2006-01-02")
			day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, a.tz())
			days := int(math.Round(day.Sub(today).Hours() / 24))
			b.DaysToExpiry = &days
		}
		p.Batches = append(p.Batches, b)
		p.OnHand += b.OnHand
		p.Allocated += b.Allocated
		if b.Status == "released" {
			p.Available += b.Available
		}
	}
	return out, nil
}

// today is the start of today in business time.
func (a *Allocator) today() time.Time {
	local := a.now().In(a.tz())
	return time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, a.tz())
}

// AwaitingLine is what one line of an order waits for.
type AwaitingLine struct {
	OrderItem string `json:"order_item"`
	SKU       string `json:"sku"`
	Product   string `json:"product_name"`
	Ordered   int    `json:"ordered"`
	Waiting   int    `json:"waiting"`
}

// AwaitingOrder is an order waiting for stock.
type AwaitingOrder struct {
	OrderID      string         `json:"order"`
	OrderNumber  string         `json:"order_number"`
	Status       string         `json:"status"`
	WaitingSince string         `json:"waiting_since"`
	Lines        []AwaitingLine `json:"lines"`
}

// FindAwaitingOrders lists the orders with lines in the allocation queue, the longest
// waiting first.
func FindAwaitingOrders(db dbx.Builder, limit int) ([]AwaitingOrder, error) {
	var rows []struct {
		Order   string `db:"order_id"`
		Number  string `db:"order_number"`
		Status  string `db:"status"`
		Since   string `db:"since"`
		Item    string `db:"order_item"`
		SKU     string `db:"sku"`
		Name    string `db:"name"`
		Ordered int    `db:"ordered"`
		Waiting int    `db:"waiting"`
	}
	err := db.NewQuery(`WITH waiting AS (SELECT "order", MIN(created) AS since FROM allocation_queue WHERE state = 'pending'
		GROUP BY "order" ORDER BY since, "order" LIMIT {:limit})
		SELECT o.id AS order_id, o.order_number, o.status, w.since, q.order_item, p.sku, p.name,
		 oi.current_quantity AS ordered, q.quantity AS waiting
		FROM waiting w JOIN orders o ON o.id = w."order"
		JOIN allocation_queue q ON q."order" = w."order" AND q.state = 'pending'
		JOIN order_items oi ON oi.id = q.order_item JOIN products p ON p.id = q.product
		ORDER BY w.since, o.id, p.sku`).Bind(dbx.Params{"limit": limit}).All(&rows)
	if err != nil {
		return nil, fmt.Errorf("read the allocation queue: %w", err)
	}
	out := []AwaitingOrder{}
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].OrderID != r.Order {
			out = append(out, AwaitingOrder{OrderID: r.Order, OrderNumber: r.Number, Status: r.Status, WaitingSince: r.Since})
		}
		o := &out[len(out)-1]
		o.Lines = append(o.Lines, AwaitingLine{OrderItem: r.Item, SKU: r.SKU, Product: r.Name, Ordered: r.Ordered, Waiting: r.Waiting})
	}
	return out, nil
}

// LedgerMismatch is a batch whose cached figures disagree with their sources.
type LedgerMismatch struct {
	BatchID       string `db:"id" json:"batch"`
	Code          string `db:"code" json:"batch_code"`
	OnHand        int    `db:"on_hand" json:"on_hand"`
	MovementSum   int    `db:"moved" json:"movement_sum"`
	Allocated     int    `db:"allocated" json:"allocated"`
	AllocationSum int    `db:"held" json:"allocation_sum"`
}

// VerifyLedger returns every batch whose on_hand is not the sum of its on-hand
// movements, whose allocated is not the sum of its active allocations, or that holds
// more than it has: none, when the books are right.
func VerifyLedger(db dbx.Builder) ([]LedgerMismatch, error) {
	var out []LedgerMismatch
	err := db.NewQuery(`SELECT * FROM (SELECT b.id, b.code, b.on_hand, b.allocated,
		 (SELECT COALESCE(SUM(m.quantity), 0) FROM inventory_movements m WHERE m.batch = b.id AND m.type IN ` + onHandTypes + `) AS moved,
		 (SELECT COALESCE(SUM(a.quantity), 0) FROM allocations a WHERE a.batch = b.id AND a.status = 'allocated') AS held
		FROM batches b) WHERE on_hand != moved OR allocated != held OR allocated > on_hand OR on_hand < 0
		ORDER BY code`).All(&out)
	return out, err
}
