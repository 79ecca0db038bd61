package ingest

import "github.com/opspine/opspine/app/shopify"

// Order statuses owned by ingestion; later features add fulfilment states after paid.
const (
	OrderPending   = "pending"
	OrderPaid      = "paid"
	OrderCancelled = "cancelled"
	OrderRefunded  = "refunded"
)

// Statuses later than paid, set by allocation; Shopify saying "paid" again keeps them.
const (
	OrderAwaitingStock = "awaiting_stock"
	OrderAllocated     = "allocated"
)

// IsAfterPaid reports whether status is one of the fulfilment states after paid.
func IsAfterPaid(status string) bool {
	return status == OrderAwaitingStock || status == OrderAllocated
}

// KeepLaterStatus is the status to store when Shopify's data derives `derived` for an
// order now in `current`: a later fulfilment state survives a repeated "paid".
func KeepLaterStatus(current, derived string) string {
	if derived == OrderPaid && IsAfterPaid(current) {
		return current
	}
	return derived
}

// DeriveOrderStatus maps Shopify's order to opspine's status. refundedMinor is what
// refunds/create deliveries already recorded, so a fully refunded order stays refunded
// even when an older-looking orders/updated still says paid.
//
//	financial_status refunded, or refunds covering the total → refunded
//	cancelled_at set, or financial_status voided            → cancelled
//	paid, partially_refunded                                → paid
//	anything else (pending, authorized, partially_paid)     → pending
func DeriveOrderStatus(o shopify.Order, totalMinor, refundedMinor int64) string {
	switch {
	case o.FinancialStatus == "refunded" || (totalMinor > 0 && refundedMinor >= totalMinor):
		return OrderRefunded
	case !o.CancelledAt.IsZero() || o.FinancialStatus == "voided":
		return OrderCancelled
	case o.FinancialStatus == "paid" || o.FinancialStatus == "partially_refunded":
		return OrderPaid
	default:
		return OrderPending
	}
}
