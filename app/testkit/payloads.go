// Package testkit plays Shopify's part in opspine's tests and benchmarks: realistic
// payloads (app/shopify/examples), signed deliveries, and a running opspine on a real
// SQLite file behind a real HTTP server on 127.0.0.1.
package testkit

import "github.com/opspine/opspine/app/shopify/examples"

// The payload builders, under the names the tests use.
type Doc = examples.Doc

var (
	Order          = examples.Order
	WithOrderID    = examples.WithOrderID
	WithStatus     = examples.WithStatus
	WithCancelled  = examples.WithCancelled
	WithCustomer   = examples.WithCustomer
	Refund         = examples.Refund
	Customer       = examples.Customer
	CustomerRedact = examples.CustomerRedact
	DataRequest    = examples.DataRequest
)
