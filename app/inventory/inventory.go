// Package inventory is stock per batch and FEFO allocation (SOP-INV-01).
//
// A batch's on_hand is the sum of its inventory_movements of the on-hand types
// (production, dispatch, adjustment, count_correction); its allocated is the sum of its
// active allocations. Both are cached on the batch, changed only here and in the same
// transaction as the movement or allocation that changes them (VerifyLedger proves the
// caches equal the sums); available is on_hand − allocated and is never stored.
//
// Every function runs in the caller's transaction when given a transaction's app (the
// ingestion delivery, a batch transition), in its own otherwise. PocketBase has one
// writer connection, so each read-then-write here is serialized with every other write:
// two orders can never both see the same free unit. The UPDATEs also carry their own
// guards (allocated + q <= on_hand, on_hand + q >= allocated), so even a wrong read
// could not take a batch below zero or allocate a unit twice.
package inventory

import (
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
)

// Movement types. The first four change on_hand; allocation and release change allocated.
const (
	MovementProduction      = "production"
	MovementDispatch        = "dispatch"
	MovementAdjustment      = "adjustment"
	MovementCountCorrection = "count_correction"
	MovementAllocation      = "allocation"
	MovementRelease         = "release"
)

// onHandTypes are the movement types whose quantities sum to on_hand.
const onHandTypes = `('production', 'dispatch', 'adjustment', 'count_correction')`

// Order statuses this package sets; they come after ingestion's paid.
const (
	OrderPaid          = "paid"
	OrderAwaitingStock = "awaiting_stock"
	OrderAllocated     = "allocated"
)

// Allocation statuses.
const (
	AllocationAllocated  = "allocated"
	AllocationDispatched = "dispatched"
	AllocationReleased   = "released"
)

// Queue states.
const (
	QueuePending   = "pending"
	QueueAllocated = "allocated"
	QueueCancelled = "cancelled"
)

// Settings of allocation, tunable in `config`.
var (
	MinShelfLifeDays = settings.Register(settings.Setting{
		Key: "allocation_min_shelf_life_days", Default: 7, Unit: "days",
		Description: "A batch is allocated only if at least this many days of shelf life remain on the expected delivery date. Default 7.",
	})
	ExpectedDeliveryDays = settings.Register(settings.Setting{
		Key: "expected_delivery_days", Default: 2, Unit: "days",
		Description: "Days from allocation to delivery, used with allocation_min_shelf_life_days to skip short-dated stock. Default 2.",
	})
)

// Errors of stock changes.
var (
	ErrNoSuchBatch = errors.New("no such batch")
	ErrRefused     = errors.New("inventory: refused")
)

// RefusedError is a stock change refused with a message a person can act on; nothing
// was written.
type RefusedError struct {
	Field   string
	Message string
}

func (e *RefusedError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

func refuse(field, format string, args ...any) error {
	return &RefusedError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Allocator holds what allocation needs from the running application: the clock and
// the business time zone (the expected delivery day is a day there).
type Allocator struct {
	Now      func() time.Time
	Timezone *time.Location
}

func (a *Allocator) now() time.Time {
	if a.Now == nil {
		return time.Now().UTC()
	}
	return a.Now().UTC()
}

func (a *Allocator) tz() *time.Location {
	if a.Timezone == nil {
		return time.UTC
	}
	return a.Timezone
}

// expiryCutoff is the earliest expiry_date a batch may have to be allocated now: the
// start (business time) of today + expected delivery days + minimum shelf life. Expiry
// dates are stored at midday of their day, so a batch whose use-by day is the cutoff
// day qualifies.
func (a *Allocator) expiryCutoff(db dbx.Builder, now time.Time) string {
	local := now.In(a.tz())
	days := int(ExpectedDeliveryDays.Int(db) + MinShelfLifeDays.Int(db))
	day := time.Date(local.Year(), local.Month(), local.Day()+days, 0, 0, 0, 0, a.tz())
	return sqlstore.FormatTime(day)
}
