package shopify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ParsedOrder is an order payload read and checked, with money in minor units.
type ParsedOrder struct {
	Order
	Amounts OrderAmounts
	Lines   []ParsedLine
}

// OrderAmounts are an order's money fields in minor units of its currency.
type OrderAmounts struct{ Subtotal, Discount, Shipping, Tax, Total int64 }

// ParsedLine is a line item with its money in minor units.
type ParsedLine struct {
	LineItem
	SKU             string
	Price           int64
	Discount        int64
	CurrentQuantity int64
	// PropertiesJSON is the properties as a JSON array of {name, value}.
	PropertiesJSON string
}

// ParseOrder reads an order payload (webhook orders/* or Admin API: the same shape).
// An error means the payload itself is wrong: it will never read differently.
func ParseOrder(payload []byte) (ParsedOrder, error) {
	var p ParsedOrder
	if err := json.Unmarshal(payload, &p.Order); err != nil {
		return p, fmt.Errorf("order payload is not valid: %w", err)
	}
	o := &p.Order
	if o.ID == "" {
		return p, errors.New("order payload has no id")
	}
	if o.Currency == "" {
		return p, fmt.Errorf("order %s has no currency", o.ID)
	}
	var shipping Money
	if o.TotalShippingSet != nil {
		shipping = o.TotalShippingSet.ShopMoney.Amount
	}
	for _, f := range []struct {
		dst *int64
		src Money
	}{{&p.Amounts.Subtotal, o.SubtotalPrice}, {&p.Amounts.Discount, o.TotalDiscounts}, {&p.Amounts.Shipping, shipping},
		{&p.Amounts.Tax, o.TotalTax}, {&p.Amounts.Total, o.TotalPrice}} {
		v, err := f.src.MinorUnits(o.Currency)
		if err != nil {
			return p, fmt.Errorf("order %s: %w", o.ID, err)
		}
		*f.dst = v
	}
	for _, li := range o.LineItems {
		l, err := parseLine(li, o.Currency)
		if err != nil {
			return p, fmt.Errorf("order %s: %w", o.ID, err)
		}
		p.Lines = append(p.Lines, l)
	}
	return p, nil
}

func parseLine(li LineItem, currency string) (ParsedLine, error) {
	l := ParsedLine{LineItem: li, CurrentQuantity: li.Quantity, PropertiesJSON: "[]"}
	if li.ID == "" {
		return l, errors.New("a line item has no id")
	}
	if li.SKU != nil {
		l.SKU = strings.TrimSpace(*li.SKU)
	}
	var err error
	if l.Price, err = li.Price.MinorUnits(currency); err != nil {
		return l, fmt.Errorf("line %s: %w", li.ID, err)
	}
	if l.Discount, err = li.TotalDiscount.MinorUnits(currency); err != nil {
		return l, fmt.Errorf("line %s: %w", li.ID, err)
	}
	if li.CurrentQuantity != nil {
		l.CurrentQuantity = *li.CurrentQuantity
	}
	if len(li.Properties) > 0 {
		b, err := json.Marshal(li.Properties)
		if err != nil {
			return l, fmt.Errorf("line %s: properties: %w", li.ID, err)
		}
		l.PropertiesJSON = string(b)
	}
	return l, nil
}
