// Package batches is the life of a production batch (SOP-LAB-01, SOP-PROOF-00): Create
// makes it on QA hold with its code, public id, QR code, pouch label and co-packer
// email; lab results, manual overrides and recalls move it on through Transition.
package batches

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// Creating a batch writes the batch (with its QR image and label PDF), its first
// batch_status_history row, an ops_events row and the co-packer's email in one
// transaction (SOP-LAB-01 batch creation, SOP-PROOF-00 QR and label).

const (
	collectionBatches  = "batches"
	collectionProducts = "products"
)

// maxCreateAttempts bounds the retries when another writer takes the same code first.
const maxCreateAttempts = 5

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
