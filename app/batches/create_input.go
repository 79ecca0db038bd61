package batches

// What staff give to create a batch, checked and turned into a plan: the quantity in
// units and kg, the production and use-by days in business time.

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
)

// futureTolerance allows for clocks a little apart: a production time up to this far
// ahead of now is accepted.
const futureTolerance = 5 * time.Minute

// ErrInvalidInput is what every rejected input wraps; errors.As to *InputError gives
// the field and a message a person can act on.
var ErrInvalidInput = errors.New("batches: invalid input")

// InputError is a rejected input: Field names the request field, Message says what to
// send instead. Nothing is written when Create returns one.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrInvalidInput) true.
func (e *InputError) Unwrap() error { return ErrInvalidInput }

func invalidInput(field, format string, args ...any) error {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Input is a batch to create, as staff give it (POST /api/ops/batches or the admin UI).
type Input struct {
	// ProductSKU or ProductID names the product (the SKU wins when both are set).
	ProductSKU string
	ProductID  string
	// ProducedAt is when it was made; its business-time day is the code's YYMMDD.
	// ProducedDateOnly says only its day is known (staff gave a date, not a time): it
	// is then stored as midday of that day and may be today.
	ProducedAt       time.Time
	ProducedDateOnly bool
	// Units or KgProduced (exactly one) is the quantity; kg are converted to units with
	// the product's kg_per_unit and must come to a whole number of units.
	Units      *int
	KgProduced *float64
	// ExpiryDate is the use-by day; zero: the produced day plus the product's shelf life.
	ExpiryDate time.Time
	Notes      string
	// Actor is who creates it: "staff:<id>", "superuser:<id>" or a job name.
	Actor string
}

// plan is a validated input: the quantity in units and kg, and the days in business time.
type plan struct {
	units      int
	kg         float64
	producedAt time.Time
	// day is the start of the production day in business time; useBy the start of the use-by day.
	day   time.Time
	useBy time.Time
	notes string
}

func planBatch(in Input, product *core.Record, deps Deps, now time.Time) (plan, error) {
	tz := deps.Timezone
	p := plan{producedAt: in.ProducedAt.UTC(), notes: strings.TrimSpace(in.Notes)}
	if in.ProducedAt.IsZero() {
		return p, invalidInput("produced_at", "Give produced_at: the production date (2026-11-21) or time (2026-11-21T09:30:00Z).")
	}
	p.day = StartOfDay(in.ProducedAt, tz)
	switch today := StartOfDay(now, tz); {
	case in.ProducedDateOnly && p.day.After(today):
		return p, invalidInput("produced_at", "The production date %s is after today (%s in %s); give the day the batch was made.",
			FormatLabelDate(p.day, tz), FormatLabelDate(now, tz), tz)
	case in.ProducedDateOnly:
		p.producedAt = MiddayOf(p.day, tz).UTC()
	case in.ProducedAt.After(now.Add(futureTolerance)):
		return p, invalidInput("produced_at", "The production time %s is in the future (it is now %s in %s); give when the batch was made.",
			in.ProducedAt.In(tz).Format("2 Jan 2006 15:04"), now.In(tz).Format("2 Jan 2006 15:04"), tz)
	}
	var err error
	if p.units, p.kg, err = quantity(in, product); err != nil {
		return p, err
	}
	p.useBy, err = useByDay(in, product, p.day, deps.Timezone)
	return p, err
}

// quantity turns units or kg into both, using the product's kg_per_unit.
func quantity(in Input, product *core.Record) (units int, kg float64, err error) {
	sku := product.GetString("sku")
	unit := unitName(product)
	perUnit := product.GetFloat("kg_per_unit")
	switch {
	case in.Units != nil && in.KgProduced != nil:
		return 0, 0, invalidInput("units", "Give units or kg_produced, not both.")
	case in.Units == nil && in.KgProduced == nil:
		return 0, 0, invalidInput("units", "Give the quantity produced: units (%s of %s) or kg_produced.", plural(unit), sku)
	case in.Units != nil:
		if *in.Units < 1 {
			return 0, 0, invalidInput("units", "units must be at least 1; got %d.", *in.Units)
		}
		return *in.Units, roundKg(float64(*in.Units) * perUnit), nil
	}
	kg = *in.KgProduced
	if kg <= 0 || math.IsNaN(kg) || math.IsInf(kg, 0) {
		return 0, 0, invalidInput("kg_produced", "The kg produced must be more than 0; got %s.", formatNumber(kg))
	}
	if perUnit <= 0 {
		return 0, 0, invalidInput("kg_produced", "Product %s has no kg per unit, so kg cannot be converted: give units, or set kg_per_unit on the product.", sku)
	}
	exact := kg / perUnit
	whole := math.Round(exact)
	if math.Abs(exact-whole) > 1e-6*math.Max(1, exact) || whole < 1 {
		lo, hi := math.Floor(exact), math.Ceil(exact)
		nearest := fmt.Sprintf("%s kg (%s %s)", formatNumber(roundKg(hi*perUnit)), formatNumber(hi), plural(unit))
		if lo >= 1 {
			nearest = fmt.Sprintf("%s kg (%s %s) or %s", formatNumber(roundKg(lo*perUnit)), formatNumber(lo), plural(unit), nearest)
		}
		return 0, 0, invalidInput("kg_produced", "%s kg is not a whole number of %s kg %s of %s (it is %s); give units, or the nearest counts: %s.",
			formatNumber(kg), formatNumber(perUnit), plural(unit), sku, strconv.FormatFloat(exact, 'f', 2, 64), nearest)
	}
	return int(whole), roundKg(kg), nil
}

// useByDay is the given expiry's day, or the produced day plus the product's shelf life.
func useByDay(in Input, product *core.Record, day time.Time, tz *time.Location) (time.Time, error) {
	if !in.ExpiryDate.IsZero() {
		useBy := StartOfDay(in.ExpiryDate, tz)
		if useBy.Before(day) {
			return time.Time{}, invalidInput("expiry_date", "The expiry date %s is before the production day %s.",
				FormatLabelDate(useBy, tz), FormatLabelDate(day, tz))
		}
		return useBy, nil
	}
	days := product.GetInt("shelf_life_days")
	if days <= 0 {
		return time.Time{}, invalidInput("expiry_date", "Product %s has no shelf life: give expiry_date, or set shelf_life_days on the product.", product.GetString("sku"))
	}
	local := day.In(tz)
	return time.Date(local.Year(), local.Month(), local.Day()+days, 0, 0, 0, 0, tz), nil
}

func findProduct(app core.App, in Input) (*core.Record, error) {
	sku, id := strings.TrimSpace(in.ProductSKU), strings.TrimSpace(in.ProductID)
	var rec *core.Record
	var err error
	switch {
	case sku != "":
		rec, err = app.FindFirstRecordByData(collectionProducts, "sku", sku)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, invalidInput("product_sku", "No product with SKU %q; add it in products first, or check the SKU.", sku)
		}
	case id != "":
		rec, err = app.FindRecordById(collectionProducts, id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, invalidInput("product", "No product with id %q.", id)
		}
	default:
		return nil, invalidInput("product_sku", "Give product_sku: the SKU of the product made.")
	}
	if err != nil {
		return nil, fmt.Errorf("find product: %w", err)
	}
	return rec, nil
}

// unitName is what one unit of the product is called ("pouch"); "unit" when unset.
func unitName(product *core.Record) string {
	if u := product.GetString("unit"); u != "" {
		return u
	}
	return "unit"
}

// plural is the English plural of a unit name: pouches, boxes, trays.
func plural(unit string) string {
	for _, end := range []string{"ch", "sh", "x", "s"} {
		if strings.HasSuffix(unit, end) {
			return unit + "es"
		}
	}
	return unit + "s"
}

func roundKg(kg float64) float64 { return math.Round(kg*1000) / 1000 }

// formatNumber prints a quantity without trailing zeros: 500, 0.3, 1666.
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
