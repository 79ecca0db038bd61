package shopify

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestMoneyMinorUnits(t *testing.T) {
	cases := []struct {
		amount, currency string
		want             int64
		err              string
	}{
		{"199.00", "GBP", 19900, ""},
		{"0.1", "GBP", 10, ""},
		{"12", "GBP", 1200, ""},
		{"-4.99", "GBP", -499, ""},
		{".5", "EUR", 50, ""},
		{"1000", "JPY", 1000, ""},
		{"1000.00", "JPY", 1000, ""},
		{"1.234", "KWD", 1234, ""},
		{"10.230", "GBP", 1023, ""}, // a trailing zero beyond the precision is harmless
		{"", "GBP", 0, ""},
		{"1.999", "GBP", 0, "more decimals"},
		{"12.5", "JPY", 0, "more decimals"},
		{"1e3", "GBP", 0, "not a number"},
		{"12,00", "GBP", 0, "not a number"},
		{".", "GBP", 0, "not a number"},
		{"99999999999999999999", "GBP", 0, "out of range"},
	}
	for _, c := range cases {
		got, err := Money(c.amount).MinorUnits(c.currency)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q %s: err %v, want %q", c.amount, c.currency, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q %s: %d %v, want %d", c.amount, c.currency, got, err, c.want)
		}
	}
}

func TestIDKeepsIdsBeyondTwoToThe53Exactly(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{`9007199254740993`, "9007199254740993", ""},
		{`"9007199254740993"`, "9007199254740993", ""},
		{`"gid://shopify/Order/9007199254740993"`, "9007199254740993", ""},
		{`18446744073709551615`, "18446744073709551615", ""},
		{`null`, "", ""},
		{`""`, "", ""},
		{`1.5`, "", "not a whole number"},
		{`"abc"`, "", "not a whole number"},
		{`-3`, "", "not a whole number"},
	}
	for _, c := range cases {
		var id ID
		err := json.Unmarshal([]byte(c.in), &id)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || string(id) != c.want {
			t.Errorf("%s: %q %v, want %q", c.in, id, err, c.want)
		}
	}
}

func TestPropertiesAcceptArrayAndObject(t *testing.T) {
	cases := []struct {
		in   string
		want Properties
	}{
		{`[{"name":"Pet name","value":"Rex"},{"name":"_origin","value":null}]`, Properties{{"Pet name", "Rex"}, {"_origin", ""}}},
		{`{"Engraving":"Good boy","Size":3}`, Properties{{"Engraving", "Good boy"}, {"Size", "3"}}},
		{`[]`, nil},
		{`null`, nil},
		{`[{"name":"n","value":{"a":1}}]`, Properties{{"n", `{"a":1}`}}},
	}
	for _, c := range cases {
		var p Properties
		if err := json.Unmarshal([]byte(c.in), &p); err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if len(p) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.in, p, c.want)
			continue
		}
		for i := range p {
			if p[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.in, p, c.want)
			}
		}
	}
	var p Properties
	if err := json.Unmarshal([]byte(`"text"`), &p); err == nil {
		t.Errorf("a string is neither form and must be refused")
	}
}

func TestTimeReadsShopifyOffsetsAsUTC(t *testing.T) {
	var v struct {
		At   Time `json:"at"`
		Null Time `json:"null"`
	}
	if err := json.Unmarshal([]byte(`{"at":"2026-11-20T09:15:03-05:00","null":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if got := v.At.Format("2006-01-02 15:04:05 MST"); got != "2026-11-20 14:15:03 UTC" || !v.Null.IsZero() {
		t.Errorf("got %s / %v", got, v.Null)
	}
}

// FuzzMoneyMinorUnits: never panics, and whatever it accepts reads back to the same amount.
func FuzzMoneyMinorUnits(f *testing.F) {
	for _, s := range []string{"199.00", "0.1", "-4.99", "1000", "1.234", "", ".", "1e3", "99999999999999999999"} {
		f.Add(s, "GBP")
	}
	f.Add("1.234", "KWD")
	f.Add("1000", "JPY")
	f.Fuzz(func(t *testing.T, amount, currency string) {
		n, err := Money(amount).MinorUnits(currency)
		if err != nil {
			return
		}
		exp := CurrencyExponent(currency)
		back := Money(formatMinor(n, exp))
		m, err := back.MinorUnits(currency)
		if err != nil || m != n {
			t.Fatalf("%q → %d → %q → %d %v", amount, n, back, m, err)
		}
	})
}

func formatMinor(n int64, exp int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strings.Repeat("0", exp+1) + json.Number(itoa(n)).String()
	s = strings.TrimLeft(s[:len(s)-exp], "0") + "." + s[len(s)-exp:]
	if strings.HasPrefix(s, ".") {
		s = "0" + s
	}
	if neg {
		s = "-" + s
	}
	return strings.TrimSuffix(s, ".")
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestRedactPayloadKeepsAmountsAndSKUs(t *testing.T) {
	out := string(RedactPayload(fixtureOrder(t)))
	for _, gone := range []string{"Jane", "Acacia", "BS1", "+4477", "203.0.113.42", "Rex", "Good boy", "4242", "neighbour", "51.45"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q survived redaction", gone)
		}
	}
	for _, kept := range []string{`"total_price":"58.99"`, `"sku":"PR-BEEF-2KG"`, `"id":9007199254740993`, `"quantity":2`, `"name":"Pet name"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s lost by redaction", kept)
		}
	}
	if got := string(RedactPayload([]byte("not json jane@example.com"))); strings.Contains(got, "jane") {
		t.Errorf("non-JSON body kept: %s", got)
	}
}

func TestParseOrderPayloadReadsShopifyShapes(t *testing.T) {
	p, err := ParseOrder(fixtureOrder(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "9007199254740993" || p.Amounts != (OrderAmounts{5400, 600, 499, 983, 5899}) || len(p.Lines) != 2 {
		t.Fatalf("parsed %+v %+v", p.ID, p.Amounts)
	}
	if p.Lines[0].Price != 2400 || p.Lines[0].Discount != 480 || p.Lines[1].CurrentQuantity != 1 || p.Lines[0].SKU != "PR-BEEF-2KG" {
		t.Errorf("lines %+v", p.Lines)
	}
}

// FuzzOrderPayload: the parser of outside data never panics, and what it accepts
// is internally consistent.
func FuzzOrderPayload(f *testing.F) {
	f.Add(fixtureOrder(f))
	f.Add([]byte(`{"id":"1","currency":"JPY","total_price":1000,"line_items":[{"id":2,"price":"5","properties":{"a":"b"}}]}`))
	f.Add([]byte(`{"id":1,"currency":"GBP","line_items":[{"id":2,"sku":null,"properties":null,"current_quantity":0}]}`))
	f.Add([]byte(`{"id":1,"currency":"KWD","total_price":"1.2345"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p, err := ParseOrder(payload)
		if err != nil {
			return
		}
		if p.ID == "" || p.Currency == "" {
			t.Fatalf("accepted without id or currency: %s", payload)
		}
		total, err := p.TotalPrice.MinorUnits(p.Currency)
		if err != nil || total != p.Amounts.Total {
			t.Fatalf("total %d vs %d (%v)", total, p.Amounts.Total, err)
		}
		for _, l := range p.Lines {
			if l.ID == "" || !json.Valid([]byte(l.PropertiesJSON)) {
				t.Fatalf("line %+v", l)
			}
		}
	})
}

// fixtureOrder is the Shopify-shaped order the testkit serves (testkit imports this
// package, so the file is read directly).
func fixtureOrder(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("examples/order.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
