package benchmark

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// orderJSON is Shopify's example orders/create payload (the same order as the tests'
// fixture in app/testkit): kept here so that the production binary, which carries
// `opspine bench`, does not link the test kit and with it `testing`.
//
//go:embed order.json
var orderJSON []byte

// benchOrder returns the example order as orders/create JSON with its own order id
// (its line items' ids derived from it, as Shopify's are distinct) and its own
// customer id and email, the changes the bench needs to make every delivery a new
// order of a new customer.
func benchOrder(orderID, customerID int64, email string) []byte {
	dec := json.NewDecoder(bytes.NewReader(orderJSON))
	dec.UseNumber() // ids beyond 2^53 stay exact
	var d map[string]any
	if err := dec.Decode(&d); err != nil {
		panic(fmt.Sprintf("bench: the embedded order.json: %v", err))
	}
	d["id"] = json.Number(fmt.Sprint(orderID))
	d["order_number"] = json.Number(fmt.Sprint(1000 + orderID%1000000))
	d["name"] = fmt.Sprintf("#%d", 1000+orderID%1000000)
	for i, li := range d["line_items"].([]any) {
		li.(map[string]any)["id"] = json.Number(fmt.Sprint(orderID*10 + int64(i) + 1))
	}
	c := d["customer"].(map[string]any)
	c["id"] = json.Number(fmt.Sprint(customerID))
	c["email"] = email
	d["email"] = email
	d["contact_email"] = email
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}
