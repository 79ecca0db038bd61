package shopify

import (
	"encoding/json"
)

// Order is the part of Shopify's order payload (webhooks orders/* and the Admin REST
// API, which share the shape) that opspine reads.
type Order struct {
	ID                ID              `json:"id"`
	Name              string          `json:"name"`
	OrderNumber       json.Number     `json:"order_number"`
	Email             string          `json:"email"`
	ContactEmail      string          `json:"contact_email"`
	Currency          string          `json:"currency"`
	FinancialStatus   string          `json:"financial_status"`
	FulfillmentStatus *string         `json:"fulfillment_status"`
	SubtotalPrice     Money           `json:"subtotal_price"`
	TotalDiscounts    Money           `json:"total_discounts"`
	TotalTax          Money           `json:"total_tax"`
	TotalPrice        Money           `json:"total_price"`
	TotalShippingSet  *MoneySet       `json:"total_shipping_price_set"`
	Tags              string          `json:"tags"`
	Note              string          `json:"note"`
	CreatedAt         Time            `json:"created_at"`
	UpdatedAt         Time            `json:"updated_at"`
	CancelledAt       Time            `json:"cancelled_at"`
	CancelReason      string          `json:"cancel_reason"`
	Customer          *Customer       `json:"customer"`
	ShippingAddress   json.RawMessage `json:"shipping_address"`
	LineItems         []LineItem      `json:"line_items"`
}

// MoneySet is Shopify's amount in shop and presentment currencies.
type MoneySet struct {
	ShopMoney struct {
		Amount       Money  `json:"amount"`
		CurrencyCode string `json:"currency_code"`
	} `json:"shop_money"`
}

// LineItem is one line of an order.
type LineItem struct {
	ID              ID         `json:"id"`
	ProductID       ID         `json:"product_id"`
	VariantID       ID         `json:"variant_id"`
	SKU             *string    `json:"sku"`
	Title           string     `json:"title"`
	VariantTitle    *string    `json:"variant_title"`
	Quantity        int64      `json:"quantity"`
	CurrentQuantity *int64     `json:"current_quantity"`
	Price           Money      `json:"price"`
	TotalDiscount   Money      `json:"total_discount"`
	Properties      Properties `json:"properties"`
}

// Customer is Shopify's customer, as sent by customers/* webhooks and inside orders.
type Customer struct {
	ID             ID              `json:"id"`
	Email          *string         `json:"email"`
	FirstName      *string         `json:"first_name"`
	LastName       *string         `json:"last_name"`
	Phone          *string         `json:"phone"`
	UpdatedAt      Time            `json:"updated_at"`
	DefaultAddress json.RawMessage `json:"default_address"`
	EmailMarketing *struct {
		State string `json:"state"`
	} `json:"email_marketing_consent"`
	AcceptsMarketing *bool `json:"accepts_marketing"`
}

// Refund is the refunds/create payload.
type Refund struct {
	ID              ID     `json:"id"`
	OrderID         ID     `json:"order_id"`
	CreatedAt       Time   `json:"created_at"`
	Note            string `json:"note"`
	RefundLineItems []struct {
		LineItemID  ID     `json:"line_item_id"`
		Quantity    int64  `json:"quantity"`
		RestockType string `json:"restock_type"`
	} `json:"refund_line_items"`
	Transactions []struct {
		Kind     string `json:"kind"`
		Status   string `json:"status"`
		Amount   Money  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"transactions"`
}

// ComplianceRequest is the body of customers/data_request, customers/redact and shop/redact.
type ComplianceRequest struct {
	ShopID     ID     `json:"shop_id"`
	ShopDomain string `json:"shop_domain"`
	Customer   *struct {
		ID    ID     `json:"id"`
		Email string `json:"email"`
		Phone string `json:"phone"`
	} `json:"customer"`
	OrdersRequested []ID `json:"orders_requested"`
	OrdersToRedact  []ID `json:"orders_to_redact"`
	DataRequest     *struct {
		ID ID `json:"id"`
	} `json:"data_request"`
}
