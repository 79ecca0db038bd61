package shopify

import (
	"bytes"
	"encoding/json"
)

// Keys whose values are personal data wherever they appear in a Shopify payload.
var personalKeys = map[string]bool{
	"email": true, "contact_email": true, "phone": true, "first_name": true, "last_name": true,
	"address1": true, "address2": true, "city": true, "zip": true, "company": true,
	"latitude": true, "longitude": true, "browser_ip": true, "note": true,
}

// Keys whose whole value is personal: addresses, device and payment details.
var personalObjects = map[string]bool{
	"billing_address": true, "shipping_address": true, "default_address": true, "addresses": true,
	"client_details": true, "destination": true, "payment_details": true, "note_attributes": true,
}

// RedactPayload erases personal data from a Shopify payload and keeps what the business
// needs (ids, amounts, SKUs, quantities, dates). Line item property values (engraving
// text, a pet's name) are erased, their names kept. A body that is not JSON is replaced
// whole, since nothing in it can be told apart.
func RedactPayload(payload []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(`{"redacted":true}`)
	}
	out, err := json.Marshal(redactValue(v, ""))
	if err != nil {
		return []byte(`{"redacted":true}`)
	}
	return out
}

func redactValue(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			switch {
			case personalObjects[k]:
				t[k] = nil
			case personalKeys[k]:
				if child != nil {
					t[k] = "[redacted]"
				}
			case k == "properties":
				t[k] = redactProperties(child)
			default:
				t[k] = redactValue(child, k)
			}
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactValue(t[i], key)
		}
		return t
	default:
		return v
	}
}

func redactProperties(v any) any {
	switch t := v.(type) {
	case []any:
		for i, p := range t {
			switch m := p.(type) {
			case map[string]any:
				redactValue(m, "") // personal keys beside name and value, too
				if _, has := m["value"]; has {
					m["value"] = "[redacted]"
				}
			case nil:
			default: // not a {name, value}: nothing in it is a name to keep
				t[i] = "[redacted]"
			}
		}
	case map[string]any:
		for k := range t {
			t[k] = "[redacted]"
		}
	case nil:
	default:
		return "[redacted]"
	}
	return v
}
