package hooks_test

import (
	"testing"
	"time"

	"github.com/opspine/opspine/app/testkit"
)

// Customers are matched by Shopify customer id, else by email: a guest checkout and the
// account the customer makes later are one customer.
func TestGuestCheckoutAndLaterAccountAreOneCustomer(t *testing.T) {
	s := start(t, nil)
	guest := testkit.Order(testkit.WithOrderID(7001), func(d testkit.Doc) { d["customer"] = nil; d["email"] = "Sam@Example.com" })
	account := testkit.Customer(9007199254741999, "sam@example.com", t0.Add(time.Hour))
	second := testkit.Order(testkit.WithOrderID(7002), testkit.WithCustomer(9007199254741999, "sam@example.com"))
	for _, d := range []testkit.Delivery{
		{Topic: "orders/create", Body: guest.JSON()},
		{Topic: "customers/create", Body: account.JSON()},
		{Topic: "orders/create", Body: second.JSON()},
	} {
		if code := s.Deliver(t, d); code != 200 {
			t.Fatalf("%s: %d", d.Topic, code)
		}
		s.WaitSettled(t)
	}
	if n := testkit.Count(t, s.App, "customers", "", nil); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	if n := testkit.Count(t, s.App, "customers", "shopify_customer_id = '9007199254741999' AND email = 'sam@example.com'", nil); n != 1 {
		t.Errorf("the guest customer did not take the account's id")
	}
	if a, b := loadOrder(t, s, "7001").Customer, loadOrder(t, s, "7002").Customer; a == "" || a != b {
		t.Errorf("orders point to customers %q and %q, want the same one", a, b)
	}
	// an older customers/update does not overwrite the newer one
	old := testkit.Customer(9007199254741999, "old.address@example.com", t0)
	s.Deliver(t, testkit.Delivery{Topic: "customers/update", Body: old.JSON()})
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "customers", "email = 'sam@example.com'", nil); n != 1 {
		t.Errorf("an older customers/update overwrote the newer email")
	}
}

func TestFulfilledOrderKeepsItsPaidStatusAndRecordsFulfilment(t *testing.T) {
	s := start(t, nil)
	s.Deliver(t, testkit.Delivery{Topic: "orders/paid", Body: testkit.Order(testkit.WithStatus("paid", t0)).JSON()})
	fulfilled := testkit.Order(testkit.WithStatus("paid", t0.Add(time.Hour)), func(d testkit.Doc) { d["fulfillment_status"] = "fulfilled" })
	s.Deliver(t, testkit.Delivery{Topic: "orders/fulfilled", Body: fulfilled.JSON()})
	s.WaitSettled(t)
	if o := loadOrder(t, s, orderID); o.Status != "paid" || o.Fulfillment != "fulfilled" {
		t.Errorf("order %+v, want paid and fulfilled", o)
	}
}
