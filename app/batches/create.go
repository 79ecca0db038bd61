// Package batches is the life of a production batch (SOP-LAB-01, SOP-PROOF-00): Create
// makes it on QA hold with its code, public id, QR code, pouch label and co-packer
// email; lab results, manual overrides and recalls move it on through Transition.
package batches

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/templates"
)

// Creating a batch writes the batch (with its QR image and label PDF), its first
// batch_status_history row, an ops_events row and the co-packer's email in one
// transaction (SOP-LAB-01 batch creation, SOP-PROOF-00 QR and label).

// CopackerTemplate is the email template of the co-packer's label email.
const CopackerTemplate = "copacker_label"

const (
	collectionBatches  = "batches"
	collectionProducts = "products"
)

// futureTolerance allows for clocks a little apart: a production time up to this far
// ahead of now is accepted.
const futureTolerance = 5 * time.Minute

// maxCreateAttempts bounds the retries when another writer takes the same code first.
const maxCreateAttempts = 5

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

// Deps is what Create needs from the running application.
type Deps struct {
	// Prefix starts every code: <Prefix>-YYMMDD-NNN.
	Prefix string
	// Timezone is the business time zone: the code's YYMMDD and the label's dates are
	// days there.
	Timezone *time.Location
	// PublicURL is where customers reach opspine; the QR code opens PublicURL/proof/<public id>.
	PublicURL string
	// PublicIDKey keys the public id's HMAC (LoadPublicIDKey reads or makes it).
	PublicIDKey []byte
	// Label is the pouch label's size.
	Label LabelSize
	// CopackerEmail receives the label (several: comma separated); empty sends nothing.
	CopackerEmail string
	// Brand is the brand name the email shows.
	Brand string
	// Now is the clock.
	Now func() time.Time

	// beforeInsert, when set, runs inside the transaction just before the batch row is
	// written; tests use it to have the code taken meanwhile (WithBeforeInsert).
	beforeInsert func(txApp core.App, code string)
}

func (d Deps) check() error {
	switch {
	case d.Prefix == "":
		return errors.New("batches: Deps.Prefix is empty")
	case d.Timezone == nil:
		return errors.New("batches: Deps.Timezone is nil")
	case d.PublicURL == "":
		return errors.New("batches: Deps.PublicURL is empty")
	case len(d.PublicIDKey) == 0:
		return errors.New("batches: Deps.PublicIDKey is empty")
	case d.Now == nil:
		return errors.New("batches: Deps.Now is nil")
	}
	return d.Label.check()
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

// Created is what Create made.
type Created struct {
	// Batch is the batch record as saved (file fields hold the stored file names).
	Batch   *core.Record
	Product *core.Record
	// ProofURL is what the QR code opens.
	ProofURL string
	// LabelPDF is the label as attached to the email and stored on the batch.
	LabelPDF []byte
	// EmailID is the co-packer email's email_outbox id; "" when none is configured.
	EmailID string
}

// Create validates in, then writes the batch on QA hold with its code, public id, QR
// image and label PDF, its first batch_status_history row ("" → qa_hold, "created"),
// an ops_events row and, when a co-packer address is configured, the label email
// (idempotency key copacker_label:<batch id>), all in one transaction: in app's when
// app is a transaction's app, in its own otherwise. A rejected input is an
// *InputError and writes nothing. The code's sequence is the day's highest plus one,
// read once the transaction is SQLite's writer, so concurrent creations get
// consecutive codes; should the unique index still refuse the code (a row written
// outside this path), Create tries again from the start, unless app is a transaction's
// (the caller's transaction cannot be retried from here).
//
// expiry_date, and produced_at when given as a date, are stored as midday business
// time of their day (MiddayOf): show them as business-time dates.
func Create(app core.App, in Input, deps Deps) (*Created, error) {
	if err := deps.check(); err != nil {
		return nil, err
	}
	var out *Created
	var err error
	for attempt := 1; attempt <= maxCreateAttempts; attempt++ {
		out, err = createOnce(app, in, deps)
		if err == nil || app.IsTransactional() || !isCodeTaken(err) {
			break
		}
	}
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, fmt.Errorf("create batch: %w", err)
	}
	return out, nil
}

func createOnce(app core.App, in Input, deps Deps) (*Created, error) {
	now := deps.Now().UTC()
	product, err := findProduct(app, in)
	if err != nil {
		return nil, err
	}
	p, err := planBatch(in, product, deps, now)
	if err != nil {
		return nil, err
	}
	d, err := newDraft(product, p, deps)
	if err != nil {
		return nil, err
	}
	var out *Created
	err = app.RunInTransaction(func(txApp core.App) error {
		out, err = d.write(txApp, in.Actor, deps, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// draft is a batch with everything made that does not depend on its code, before the
// transaction: its id, public id, proof URL and QR code.
type draft struct {
	product  *core.Record
	plan     plan
	id       string
	publicID string
	proofURL string
	qr       QR
	qrPNG    []byte
}

func newDraft(product *core.Record, p plan, deps Deps) (draft, error) {
	d := draft{product: product, plan: p, id: core.GenerateDefaultRandomId()}
	var err error
	if d.publicID, err = NewPublicID(deps.PublicIDKey, d.id); err != nil {
		return d, err
	}
	d.proofURL = ProofURL(deps.PublicURL, d.publicID)
	if d.qr, err = NewQR(d.proofURL); err != nil {
		return d, err
	}
	if d.qrPNG, err = d.qr.PNG(QRImageModulePixels); err != nil {
		return d, err
	}
	return d, nil
}

// write takes the day's next code, renders the label and writes the batch, its
// history row, its ops event and the co-packer's email through txApp.
func (d draft) write(txApp core.App, actor string, deps Deps, now time.Time) (*Created, error) {
	if err := takeWriteLock(txApp.DB()); err != nil {
		return nil, err
	}
	code, err := NextCode(txApp.DB(), deps.Prefix, d.plan.day)
	if err != nil {
		return nil, err
	}
	pdf, err := RenderLabelPDF(Label{
		ProductName: d.product.GetString("name"),
		BatchCode:   code,
		ProducedOn:  d.plan.day,
		UseBy:       d.plan.useBy,
		Storage:     StorageLine(d.product),
		ProofURL:    d.proofURL,
	}, d.qr, deps.Label)
	if err != nil {
		return nil, err
	}
	rec, err := d.record(txApp, code, actor, now, pdf)
	if err != nil {
		return nil, err
	}
	if deps.beforeInsert != nil {
		deps.beforeInsert(txApp, code)
	}
	if err := txApp.Save(rec); err != nil {
		return nil, fmt.Errorf("save batch %s: %w", code, err)
	}
	if err := writeCreatedHistory(txApp.DB(), d.id, actor, now); err != nil {
		return nil, fmt.Errorf("batch %s: %w", code, err)
	}
	if err := recordCreatedEvent(txApp.DB(), rec, d.product, d.plan, actor, now); err != nil {
		return nil, fmt.Errorf("batch %s: %w", code, err)
	}
	if err := runCreatedHooks(txApp, d.id, d.plan.units); err != nil {
		return nil, err
	}
	out := &Created{Batch: rec, Product: d.product, ProofURL: d.proofURL, LabelPDF: pdf}
	if deps.CopackerEmail != "" {
		if out.EmailID, err = enqueueCopackerEmail(txApp, rec, d.plan, d.proofURL, pdf, deps, now); err != nil {
			return nil, fmt.Errorf("batch %s: co-packer email: %w", code, err)
		}
	}
	return out, nil
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

func (d draft) record(app core.App, code, actor string, now time.Time, pdf []byte) (*core.Record, error) {
	col, err := app.FindCachedCollectionByNameOrId(collectionBatches)
	if err != nil {
		return nil, err
	}
	qrFile, err := filesystem.NewFileFromBytes(d.qrPNG, code+"-qr.png")
	if err != nil {
		return nil, err
	}
	pdfFile, err := filesystem.NewFileFromBytes(pdf, LabelFileName(code))
	if err != nil {
		return nil, err
	}
	ts, err := types.ParseDateTime(now)
	if err != nil {
		return nil, err
	}
	p := d.plan
	rec := core.NewRecord(col)
	rec.Id = d.id
	rec.Set("code", code)
	rec.Set("product", d.product.Id)
	rec.Set("produced_at", p.producedAt)
	rec.Set("quantity_units", p.units)
	rec.Set("kg_produced", p.kg)
	rec.Set("expiry_date", MiddayOf(p.useBy, p.useBy.Location()).UTC())
	rec.Set("status", StatusQAHold)
	rec.Set("public_id", d.publicID)
	rec.Set("qr_image", qrFile)
	rec.Set("label_pdf", pdfFile)
	rec.Set("qa_hold_at", now)
	rec.Set("notes", p.notes)
	rec.Set("created_by", actorOrSystem(actor))
	rec.SetRaw("created", ts)
	rec.SetRaw("updated", ts)
	return rec, nil
}

// ProofURL is the public proof page of the batch with this public id.
func ProofURL(publicURL, publicID string) string {
	return strings.TrimRight(publicURL, "/") + "/proof/" + publicID
}

// LabelFileName is the label PDF's name as attached to the co-packer's email.
func LabelFileName(code string) string { return code + "-label.pdf" }

func writeCreatedHistory(db dbx.Builder, batchID, actor string, now time.Time) error {
	_, err := sqlstore.Insert(db, "batch_status_history", now, dbx.Params{
		"batch": batchID, "from_status": "", "to_status": StatusQAHold,
		"actor": actorOrSystem(actor), "reason": "created", "lab_result": "",
	})
	if err != nil {
		return fmt.Errorf("write status history: %w", err)
	}
	return nil
}

func recordCreatedEvent(db dbx.Builder, rec, product *core.Record, p plan, actor string, now time.Time) error {
	code := rec.GetString("code")
	return opsevents.Record(db, now, opsevents.Event{
		EntityType: "batch", EntityID: rec.Id, Kind: "batch.created", Actor: actorOrSystem(actor),
		Message: fmt.Sprintf("Batch %s created on QA hold: %d %s of %s (%s kg)", code, p.units, plural(unitName(product)),
			product.GetString("sku"), formatNumber(p.kg)),
		Meta: map[string]any{"batch_code": code, "product_sku": product.GetString("sku"), "quantity_units": p.units,
			"kg_produced": p.kg, "to_status": StatusQAHold},
	})
}

func enqueueCopackerEmail(txApp core.App, rec *core.Record, p plan, proofURL string, pdf []byte, deps Deps, now time.Time) (string, error) {
	var to []string
	for _, a := range strings.Split(deps.CopackerEmail, ",") {
		if a = strings.TrimSpace(a); a != "" {
			to = append(to, a)
		}
	}
	code := rec.GetString("code")
	id, _, err := outbox.Enqueue(txApp, now, outbox.Email{
		To:       to,
		Template: CopackerTemplate,
		Brand:    deps.Brand,
		Data: templates.CopackerLabel{
			BatchCode:  code,
			ProducedOn: p.day.In(deps.Timezone),
			KgProduced: p.kg,
			LabelFile:  LabelFileName(code),
			VerifyURL:  proofURL,
		},
		IdempotencyKey: "copacker_label:" + rec.Id,
		Attachments:    []outbox.Attachment{{Name: LabelFileName(code), ContentType: "application/pdf", Content: pdf}},
	})
	return id, err
}

// takeWriteLock makes the transaction SQLite's writer before it reads the day's codes
// (a write that changes nothing), so that the read sees every committed batch and no
// other process can write one before this transaction commits. Without it a transaction
// that read first finds, at its first write, that another process wrote meanwhile,
// and SQLite refuses it only after its busy timeout.
func takeWriteLock(db dbx.Builder) error {
	if _, err := db.NewQuery("UPDATE batches SET code = code WHERE id = ''").Execute(); err != nil {
		return fmt.Errorf("take the write lock: %w", err)
	}
	return nil
}

// isCodeTaken reports whether err is the unique index refusing the batch: another
// writer took its code (or, all but impossibly, its public id) first.
func isCodeTaken(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "validation_not_unique") || strings.Contains(msg, "unique constraint failed") ||
		strings.Contains(msg, "must be unique")
}

func actorOrSystem(actor string) string {
	if strings.TrimSpace(actor) == "" {
		return opsevents.ActorSystem
	}
	return actor
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
