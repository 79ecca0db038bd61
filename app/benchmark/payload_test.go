package benchmark

import (
	"bytes"
	"testing"

	"github.com/opspine/opspine/app/testkit"
)

// The bench's own copy of Shopify's example order builds the same payloads as the test
// kit's fixture, so the bench keeps measuring what the tests check.
func TestBenchOrderIsTheTestKitsOrder(t *testing.T) {
	for _, k := range []int64{0, 1, 4321} {
		got := benchOrder(5_000_000_000_000_000+k, 7_000_000_000_000_000+k, "buyer@example.com")
		want := testkit.Order(testkit.WithOrderID(5_000_000_000_000_000+k),
			testkit.WithCustomer(7_000_000_000_000_000+k, "buyer@example.com")).JSON()
		if !bytes.Equal(got, want) {
			t.Fatalf("order %d: the bench's payload differs from testkit's:\n%s\n%s", k, got, want)
		}
	}
}
