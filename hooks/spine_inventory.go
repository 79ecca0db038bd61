package hooks

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/inventory"
	"github.com/opspine/opspine/jobs"
)

// inventoryJobs are the scheduled jobs of inventory and allocation. Its checks
// (stock-cover, stock-expiring, allocation-queue-age, inventory-ledger) are registered
// with monitor and run as monitor-<check>; allocation itself is event-driven.
func (s *Spine) inventoryJobs() []jobs.Job { return nil }

// allocator is inventory's view of the running app: its clock and business time zone.
func (s *Spine) allocator() *inventory.Allocator {
	return &inventory.Allocator{Now: s.now, Timezone: s.Config.Timezone}
}

// bindInventoryApi registers the inventory routes: staff read stock and the queue;
// managers and admins change stock.
func (s *Spine) bindInventoryApi(g *router.RouterGroup[*core.RequestEvent]) {
	managers := requireStaff(RoleAdmin, RoleManager)
	g.GET("/inventory/stock", s.inventoryStock)
	g.GET("/inventory/awaiting", s.inventoryAwaiting)
	g.POST("/inventory/adjust", s.inventoryAdjust).Bind(managers)
	g.POST("/inventory/count", s.inventoryCount).Bind(managers)
}

// bindInventoryHooks binds allocation to order and batch changes: a paid order is
// allocated, a cancelled or refunded one gives its stock back, a created batch puts its
// units on hand, a released batch serves waiting orders, a recalled one is replaced in
// the orders it was held for. Everything runs in the transaction of the change.
func (s *Spine) bindInventoryHooks() {
	alloc := s.allocator()
	s.Processor.OnOrderChange(func(txApp core.App, ch ingest.OrderChange) error {
		return alloc.OrderChanged(txApp, ch.OrderID, ch.From, ch.To)
	})
	// the batch hooks are package-wide: each spine serves only its own app's batches
	// (tests run several apps in one process) and unbinds when its app terminates
	mine := func(txApp core.App) bool { return txApp.DataDir() == s.App.DataDir() }
	removes := []func(){
		batches.OnCreated(func(txApp core.App, batchID string, units int) error {
			if !mine(txApp) {
				return nil
			}
			return inventory.RecordProduction(txApp, batchID, units, s.now())
		}),
		batches.OnReleased(func(txApp core.App, batchID string) error {
			if !mine(txApp) {
				return nil
			}
			return alloc.BatchReleased(txApp, batchID)
		}),
		batches.OnRecalled(func(txApp core.App, batchID string) error {
			if !mine(txApp) {
				return nil
			}
			return alloc.BatchRecalled(txApp, batchID)
		}),
	}
	s.App.OnTerminate().BindFunc(func(te *core.TerminateEvent) error {
		for _, remove := range removes {
			remove()
		}
		return te.Next()
	})
	s.bindInventoryRecordGuards(alloc)
}

// bindInventoryRecordGuards keeps movements and the queue as opspine wrote them. In
// the admin UI, creating an inventory_movements record of type adjustment (batch,
// quantity, reason) runs the same adjustment as POST /api/ops/inventory/adjust.
func (s *Spine) bindInventoryRecordGuards(alloc *inventory.Allocator) {
	const how = "stock changes through POST /api/ops/inventory/adjust or /count, or by creating an inventory_movements record of type adjustment."
	s.App.OnRecordCreateRequest("inventory_movements").BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Record.GetString("type") != inventory.MovementAdjustment {
			return e.BadRequestError("Only adjustments are entered by hand (type adjustment, with batch, quantity and reason); "+how, nil)
		}
		if !staffMayAdjust(e.RequestEvent) {
			return e.ForbiddenError("Only managers and admins adjust stock.", nil)
		}
		m, err := alloc.Adjust(e.App, inventory.Adjustment{BatchID: e.Record.GetString("batch"), Quantity: e.Record.GetInt("quantity"),
			Reason: e.Record.GetString("reason"), Actor: actorOf(e.RequestEvent)})
		if err != nil {
			return inventoryError(e.RequestEvent, err)
		}
		rec, err := e.App.FindRecordById("inventory_movements", m.ID)
		if err != nil {
			return e.InternalServerError("The adjustment was recorded but could not be read back.", err)
		}
		if err := apis.EnrichRecord(e.RequestEvent, rec); err != nil {
			return e.InternalServerError("The adjustment was recorded but could not be shown.", err)
		}
		return e.JSON(http.StatusOK, rec)
	})
	for _, name := range []string{"inventory_movements", "allocation_queue"} {
		s.App.OnRecordCreateRequest(name).BindFunc(func(e *core.RecordRequestEvent) error {
			if e.Collection.Name == "allocation_queue" {
				return e.BadRequestError("allocation_queue records are written by allocation, not by hand.", nil)
			}
			return e.Next()
		})
		s.App.OnRecordUpdateRequest(name).BindFunc(func(e *core.RecordRequestEvent) error {
			return e.BadRequestError(e.Collection.Name+" records are kept as opspine wrote them; "+how, nil)
		})
		s.App.OnRecordDeleteRequest(name).BindFunc(func(e *core.RecordRequestEvent) error {
			return e.BadRequestError(e.Collection.Name+" records are kept: they are the stock's history.", nil)
		})
	}
}

func staffMayAdjust(e *core.RequestEvent) bool {
	if e.Auth == nil {
		return false
	}
	if e.Auth.IsSuperuser() {
		return true
	}
	role := e.Auth.GetString("role")
	return e.Auth.Collection().Name == "staff" && e.Auth.GetBool("active") && (role == RoleAdmin || role == RoleManager)
}

// inventoryStock is GET /api/ops/inventory/stock[?sku=]: stock by product and batch.
func (s *Spine) inventoryStock(e *core.RequestEvent) error {
	list, err := s.allocator().FindStockByProduct(s.App.DB(), e.Request.URL.Query().Get("sku"))
	if err != nil {
		return e.InternalServerError("Could not read the stock.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{"products": list})
}

// inventoryAwaiting is GET /api/ops/inventory/awaiting[?limit=]: orders waiting for stock.
func (s *Spine) inventoryAwaiting(e *core.RequestEvent) error {
	limit := 200
	if v := e.Request.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5000 {
			return e.BadRequestError("limit must be a whole number from 1 to 5000.", nil)
		}
		limit = n
	}
	list, err := inventory.FindAwaitingOrders(s.App.DB(), limit)
	if err != nil {
		return e.InternalServerError("Could not read the allocation queue.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{"orders": list})
}

// inventoryAdjust is POST /api/ops/inventory/adjust {batch, quantity, reason}.
func (s *Spine) inventoryAdjust(e *core.RequestEvent) error {
	var body struct {
		Batch    string `json:"batch"`
		Quantity int    `json:"quantity"`
		Reason   string `json:"reason"`
	}
	if err := decodeInventoryBody(e, &body); err != nil {
		return e.BadRequestError(`Send JSON such as {"batch": "B-261120-001", "quantity": -3, "reason": "damaged pouches"} (batch: id or code).`, nil)
	}
	m, err := s.allocator().Adjust(s.App, inventory.Adjustment{BatchID: body.Batch, Quantity: body.Quantity, Reason: body.Reason, Actor: actorOf(e)})
	if err != nil {
		return inventoryError(e, err)
	}
	return e.JSON(http.StatusOK, m)
}

// inventoryCount is POST /api/ops/inventory/count {batch, counted, reason?}.
func (s *Spine) inventoryCount(e *core.RequestEvent) error {
	var body struct {
		Batch   string `json:"batch"`
		Counted *int   `json:"counted"`
		Reason  string `json:"reason"`
	}
	if err := decodeInventoryBody(e, &body); err != nil || body.Counted == nil {
		return e.BadRequestError(`Send JSON such as {"batch": "B-261120-001", "counted": 412} (batch: id or code; reason optional).`, nil)
	}
	m, err := s.allocator().Count(s.App, inventory.StockCount{BatchID: body.Batch, Counted: *body.Counted, Reason: body.Reason, Actor: actorOf(e)})
	if err != nil {
		return inventoryError(e, err)
	}
	return e.JSON(http.StatusOK, m)
}

func decodeInventoryBody(e *core.RequestEvent, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(e.Response, e.Request.Body, 16<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// inventoryError answers a refused change with 400 and its field, an unknown batch with
// 404, anything else with 500.
func inventoryError(e *core.RequestEvent, err error) error {
	var re *inventory.RefusedError
	switch {
	case errors.As(err, &re):
		return e.BadRequestError(re.Message, validation.Errors{re.Field: validation.NewError("validation_inventory_refused", re.Message)})
	case errors.Is(err, inventory.ErrNoSuchBatch):
		return e.NotFoundError("No batch with that id or code.", nil)
	default:
		return e.InternalServerError("Could not change the stock; nothing was saved.", err)
	}
}
