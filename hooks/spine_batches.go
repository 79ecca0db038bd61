package hooks

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/batches"
)

// maxBatchBodyBytes bounds POST /api/ops/batches: a few short fields and notes.
const maxBatchBodyBytes = 64 << 10

// bindBatchesApi registers /api/ops/batches routes. Staff of any role create batches.
func (s *Spine) bindBatchesApi(g *router.RouterGroup[*core.RequestEvent]) {
	// make (or read) the public id key at start, so that a data directory that cannot
	// hold it shows in the log now rather than at the first batch
	if _, err := s.batchDeps(); err != nil {
		s.App.Logger().Error("batches: public id key", slog.String("error", err.Error()))
	}
	g.POST("/batches", s.createBatch)
	g.GET("/batches/{id}/label.pdf", s.batchLabelPDF)
}

// bindBatchRecordHooks makes creating a batch in the admin UI run the same creation as
// POST /api/ops/batches, from the submitted product, produced_at, quantity_units or
// kg_produced, expiry_date and notes; what opspine derives (code, public id, status,
// QR, label, times) is made, not taken from the form. Bind it before the guards.
func (s *Spine) bindBatchRecordHooks() {
	s.App.OnRecordCreateRequest("batches").BindFunc(func(e *core.RecordRequestEvent) error {
		if st := e.Record.GetString("status"); st != "" && st != batches.StatusQAHold {
			msg := "A new batch starts on QA hold (status qa_hold); its lab results release or fail it."
			return e.BadRequestError(msg, validation.Errors{"status": validation.NewError("validation_batch_starts_on_hold", msg)})
		}
		in := batches.Input{
			ProductID:  e.Record.GetString("product"),
			ProducedAt: e.Record.GetDateTime("produced_at").Time(),
			ExpiryDate: e.Record.GetDateTime("expiry_date").Time(),
			Notes:      e.Record.GetString("notes"),
			Actor:      actorOf(e.RequestEvent),
		}
		if units := e.Record.GetInt("quantity_units"); units != 0 {
			in.Units = &units
		}
		if kg := e.Record.GetFloat("kg_produced"); kg != 0 {
			in.KgProduced = &kg
		}
		created, err := s.createBatchFrom(e.App, in)
		if err != nil {
			return batchCreateError(e.RequestEvent, err, adminFieldNames)
		}
		rec, err := e.App.FindRecordById("batches", created.Batch.Id)
		if err != nil {
			return e.InternalServerError("The batch was created but could not be read back.", err)
		}
		if err := apis.EnrichRecord(e.RequestEvent, rec); err != nil {
			return e.InternalServerError("The batch was created but could not be shown.", err)
		}
		return e.JSON(http.StatusOK, rec)
	})
}

// batchDeps is what batches.Create needs, from the configuration and the data directory.
func (s *Spine) batchDeps() (batches.Deps, error) {
	key, err := batches.LoadPublicIDKey(s.App.DataDir(), s.Config.PublicIDKey)
	if err != nil {
		return batches.Deps{}, err
	}
	return batches.Deps{
		Prefix:        s.Config.BatchPrefix,
		Timezone:      s.Config.Timezone,
		PublicURL:     s.Config.PublicURL,
		PublicIDKey:   key,
		Label:         batches.LabelSize{WidthMM: s.Config.LabelWidthMM, HeightMM: s.Config.LabelHeightMM},
		CopackerEmail: s.Config.CopackerEmail,
		Brand:         s.Config.BrandName,
		Now:           s.now,
	}, nil
}

func (s *Spine) createBatchFrom(app core.App, in batches.Input) (*batches.Created, error) {
	deps, err := s.batchDeps()
	if err != nil {
		return nil, err
	}
	return batches.Create(app, in, deps)
}

// createBatchBody is POST /api/ops/batches.
type createBatchBody struct {
	ProductSKU string   `json:"product_sku"`
	ProducedAt string   `json:"produced_at"`
	Units      *float64 `json:"units"`
	KgProduced *float64 `json:"kg_produced"`
	ExpiryDate string   `json:"expiry_date"`
	Notes      string   `json:"notes"`
}

const createBatchExample = `Send JSON such as {"product_sku": "PR-BEEF-500", "produced_at": "2026-11-21", "kg_produced": 500} ` +
	`or with "units": 1000 instead of kg; "expiry_date" (default: produced + the product's shelf life) and "notes" are optional.`

// createBatch creates a batch on QA hold and answers 201 with its code, public id,
// proof URL, dates and links to its label and QR image.
func (s *Spine) createBatch(e *core.RequestEvent) error {
	var body createBatchBody
	dec := json.NewDecoder(http.MaxBytesReader(e.Response, e.Request.Body, maxBatchBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return e.BadRequestError(createBatchBodyError(err), nil)
	}
	in, err := body.input(s)
	if err != nil {
		return batchCreateError(e, err, nil)
	}
	in.Actor = actorOf(e)
	created, err := s.createBatchFrom(s.App, in)
	if err != nil {
		return batchCreateError(e, err, nil)
	}
	return e.JSON(http.StatusCreated, s.batchAnswer(created))
}

// createBatchBodyError says what is wrong with a body that does not decode.
func createBatchBodyError(err error) string {
	_, tooLarge := errors.AsType[*http.MaxBytesError](err)
	_, wrongType := errors.AsType[*json.UnmarshalTypeError](err)
	field, unknown := strings.CutPrefix(err.Error(), "json: unknown field ")
	switch {
	case errors.Is(err, io.EOF):
		return "The body is empty. " + createBatchExample
	case tooLarge:
		return fmt.Sprintf("The body is larger than %d KB; keep notes short.", maxBatchBodyBytes>>10)
	case unknown:
		return fmt.Sprintf("Unknown field %s. %s", field, createBatchExample)
	case wrongType:
		return fmt.Sprintf("A field has the wrong type (%v). %s", err, createBatchExample)
	default:
		return "The body is not valid JSON. " + createBatchExample
	}
}

func (b createBatchBody) input(s *Spine) (batches.Input, error) {
	in := batches.Input{ProductSKU: b.ProductSKU, KgProduced: b.KgProduced, Notes: b.Notes}
	if strings.TrimSpace(b.ProducedAt) != "" {
		t, dateOnly, err := batches.ParseDateOrTime(b.ProducedAt, s.Config.Timezone)
		if err != nil {
			return in, &batches.InputError{Field: "produced_at", Message: "Could not read produced_at: " + err.Error() + "."}
		}
		in.ProducedAt, in.ProducedDateOnly = t, dateOnly
	}
	if strings.TrimSpace(b.ExpiryDate) != "" {
		t, _, err := batches.ParseDateOrTime(b.ExpiryDate, s.Config.Timezone)
		if err != nil {
			return in, &batches.InputError{Field: "expiry_date", Message: "Could not read expiry_date: " + err.Error() + "."}
		}
		in.ExpiryDate = t
	}
	if b.Units != nil {
		u := *b.Units
		if u != math.Trunc(u) || u > math.MaxInt32 || u < math.MinInt32 {
			return in, &batches.InputError{Field: "units", Message: fmt.Sprintf("Units must be a whole number of the product's units; got %v.", u)}
		}
		n := int(u)
		in.Units = &n
	}
	return in, nil
}

// batchAnswer is the JSON of a created batch.
func (s *Spine) batchAnswer(c *batches.Created) map[string]any {
	b, tz := c.Batch, s.Config.Timezone
	produced, expiry := b.GetDateTime("produced_at").Time(), b.GetDateTime("expiry_date").Time()
	var email any
	if c.EmailID != "" {
		email = map[string]any{"id": c.EmailID, "to": s.Config.CopackerEmail}
	}
	return map[string]any{
		"id":             b.Id,
		"code":           b.GetString("code"),
		"public_id":      b.GetString("public_id"),
		"proof_url":      c.ProofURL,
		"status":         b.GetString("status"),
		"product":        map[string]any{"id": c.Product.Id, "sku": c.Product.GetString("sku"), "name": c.Product.GetString("name")},
		"produced_at":    b.GetDateTime("produced_at"),
		"produced_on":    produced.In(tz).Format("2006-01-02"),
		"expiry_date":    b.GetDateTime("expiry_date"),
		"use_by":         expiry.In(tz).Format("2006-01-02"),
		"quantity_units": b.GetInt("quantity_units"),
		"unit":           c.Product.GetString("unit"),
		"kg_produced":    b.GetFloat("kg_produced"),
		"notes":          b.GetString("notes"),
		"qa_hold_at":     b.GetDateTime("qa_hold_at"),
		"created_by":     b.GetString("created_by"),
		"copacker_email": email,
		"links": map[string]string{
			"label_pdf": "/api/ops/batches/" + b.Id + "/label.pdf",
			"qr_image":  "/api/files/batches/" + b.Id + "/" + b.GetString("qr_image"),
			"proof":     c.ProofURL,
		},
	}
}

// batchLabelPDF answers the batch's pouch label; {id} is the record id or the code.
func (s *Spine) batchLabelPDF(e *core.RequestEvent) error {
	id := e.Request.PathValue("id")
	rec, err := s.App.FindRecordById("batches", id)
	if errors.Is(err, sql.ErrNoRows) {
		rec, err = s.App.FindFirstRecordByData("batches", "code", id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return e.NotFoundError("No batch with that id or code.", nil)
	}
	if err != nil {
		return e.InternalServerError("Could not read the batch.", err)
	}
	deps, err := s.batchDeps()
	if err != nil {
		return e.InternalServerError("Could not read the public id key.", err)
	}
	pdf, err := batches.ReadLabelPDF(s.App, rec, deps)
	if err != nil {
		return e.InternalServerError("Could not read or render the label.", err)
	}
	e.Response.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s"`, batches.LabelFileName(rec.GetString("code"))))
	e.Response.Header().Set("Cache-Control", "private, no-store")
	return e.Blob(http.StatusOK, "application/pdf", pdf)
}

// adminFieldNames maps Create's field names to the batches collection's, so the admin
// UI shows a rejected input beside its field.
var adminFieldNames = map[string]string{"product_sku": "product", "units": "quantity_units"}

// batchCreateError answers a failed creation: 400 with the message and the field for a
// rejected input, 500 otherwise.
func batchCreateError(e *core.RequestEvent, err error, fieldNames map[string]string) error {
	var ie *batches.InputError
	if !errors.As(err, &ie) {
		return e.InternalServerError("Could not create the batch; nothing was saved. Try again, or check the server log.", err)
	}
	field := ie.Field
	if f, ok := fieldNames[field]; ok {
		field = f
	}
	return e.BadRequestError(ie.Message, validation.Errors{field: validation.NewError("validation_invalid_batch_input", ie.Message)})
}
