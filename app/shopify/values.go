// Package shopify reads Shopify's data as Shopify sends it (webhook payloads and Admin
// API responses) and talks to the Admin API. It knows Shopify's shapes, not our rules.
package shopify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID is a Shopify numeric id kept as its decimal text: ids go beyond 2^53, which a
// float64 (and so JavaScript, and encoding/json's default) cannot hold exactly.
// It accepts a JSON number or a JSON string of digits; null is "".
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("shopify id: %w", err)
		}
		// GraphQL ids in a REST field ("gid://shopify/Order/123") keep their number.
		if i := strings.LastIndexByte(s, '/'); strings.HasPrefix(s, "gid://") && i >= 0 {
			s = s[i+1:]
		}
	}
	if s == "" {
		*id = ""
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return fmt.Errorf("shopify id %q is not a whole number", s)
	}
	*id = ID(s)
	return nil
}

// Money is a decimal amount as Shopify sends it: a string ("199.00") or a number.
type Money string

// UnmarshalJSON implements json.Unmarshaler.
func (m *Money) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*m = ""
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("shopify money: %w", err)
		}
	}
	*m = Money(strings.TrimSpace(s))
	return nil
}

// MinorUnits converts the amount into the currency's minor units (pence for GBP,
// yen for JPY, fils for KWD) without going through floating point. More decimals
// than the currency has are an error unless they are zeros.
func (m Money) MinorUnits(currency string) (int64, error) {
	s := string(m)
	if s == "" {
		return 0, nil
	}
	exp := CurrencyExponent(currency)
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("amount %q is not a number", string(m))
	}
	if strings.TrimRight(frac[min(len(frac), exp):], "0") != "" {
		return 0, fmt.Errorf("amount %q has more decimals than %s allows (%d)", string(m), currency, exp)
	}
	if len(frac) > exp {
		frac = frac[:exp]
	}
	frac += strings.Repeat("0", exp-len(frac))
	digits := whole + frac
	if digits == "" {
		digits = "0"
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("amount %q is not a number", string(m))
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is out of range", string(m))
	}
	if neg {
		n = -n
	}
	return n, nil
}

// CurrencyExponent is the number of minor-unit digits of an ISO 4217 currency.
func CurrencyExponent(currency string) int {
	switch strings.ToUpper(currency) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	default:
		return 2
	}
}

// Time is an ISO 8601 timestamp as Shopify sends it ("2026-11-21T09:15:00-05:00");
// empty or null is the zero time.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("shopify time: %w", err)
	}
	if s == nil || *s == "" {
		t.Time = time.Time{}
		return nil
	}
	parsed, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return fmt.Errorf("shopify time %q: %w", *s, err)
	}
	t.Time = parsed.UTC()
	return nil
}

// Property is one line item property: personalisation text, a flavour, a pet's name.
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Properties reads line item properties, which Shopify sends as an array of
// {name, value} and some apps as an object {name: value}. Values that are not
// strings keep their JSON text.
type Properties []Property

// UnmarshalJSON implements json.Unmarshaler.
func (p *Properties) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*p = nil
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil
	}
	switch b[0] {
	case '[':
		var raw []struct {
			Name  json.RawMessage `json:"name"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("line item properties: %w", err)
		}
		for _, r := range raw {
			*p = append(*p, Property{Name: jsonText(r.Name), Value: jsonText(r.Value)})
		}
	case '{':
		dec := json.NewDecoder(bytes.NewReader(b))
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("line item properties: %w", err)
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return fmt.Errorf("line item properties: %w", err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return fmt.Errorf("line item properties: %w", err)
			}
			*p = append(*p, Property{Name: fmt.Sprint(key), Value: jsonText(v)})
		}
	default:
		return fmt.Errorf("line item properties: want an array or an object, got %.20s", b)
	}
	return nil
}

// jsonText renders a JSON value as text: strings unquoted, null empty, others as written.
func jsonText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return ""
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
