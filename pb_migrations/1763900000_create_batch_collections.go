package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Production batches: products gain what batches need; batches carry their code, public
// id, QR and label; lab results release or fail them; overrides and status changes are
// audited; proof page views are counted without personal data.
func init() {
	m.Register(createBatchCollections, func(app core.App) error {
		if err := dropCollections("proof_page_events", "manual_override_audit", "allocations", "batch_status_history", "lab_results", "batches")(app); err != nil {
			return err
		}
		products, err := app.FindCollectionByNameOrId("products")
		if err != nil {
			return err
		}
		for _, f := range []string{"unit", "kg_per_unit", "shelf_life_days", "storage_temp_min_c", "storage_temp_max_c", "storage_instructions"} {
			products.Fields.RemoveByName(f)
		}
		return app.Save(products)
	})
}

func createBatchCollections(app core.App) error {
	products, err := app.FindCollectionByNameOrId("products")
	if err != nil {
		return err
	}
	products.Fields.Add(
		&core.SelectField{Name: "unit", Help: "What one unit is: pouch, tray, box, bag or cake", Values: []string{"pouch", "tray", "box", "bag", "cake", "item"}, MaxSelect: 1},
		&core.NumberField{Name: "kg_per_unit", Help: "Net weight of one unit in kg; a batch given in kg is converted with it", Min: types.Pointer(0.0)},
		nonNegativeInt("shelf_life_days", "Days from production to use-by; sets a batch's expiry unless one is given"),
		&core.NumberField{Name: "storage_temp_min_c", Help: "Lowest storage temperature in °C (e.g. -25)"},
		&core.NumberField{Name: "storage_temp_max_c", Help: "Highest storage temperature in °C (e.g. -18)"},
		textField("storage_instructions", "The storage line printed on labels, e.g. \"Keep frozen at -18°C or below\""),
	)
	if err := app.Save(products); err != nil {
		return err
	}
	orders, err := app.FindCollectionByNameOrId("orders")
	if err != nil {
		return err
	}
	orderItems, err := app.FindCollectionByNameOrId("order_items")
	if err != nil {
		return err
	}

	batches := core.NewBaseCollection("batches")
	batches.Fields.Add(
		textField("code", "<PREFIX>-YYMMDD-NNN: the production day in business time and a sequence per day. Set by opspine; read-only."),
		&core.RelationField{Name: "product", CollectionId: products.Id, MaxSelect: 1, Required: true, Help: "What was made"},
		&core.DateField{Name: "produced_at", Required: true, Help: "When it was made"},
		nonNegativeInt("quantity_units", "Units produced, in the product's unit (kg given at creation is converted)"),
		&core.NumberField{Name: "kg_produced", Help: "Weight produced in kg", Min: types.Pointer(0.0)},
		dateField("expiry_date", "Use-by date: produced date + the product's shelf life, unless given"),
		&core.SelectField{Name: "status", MaxSelect: 1, Values: []string{"qa_hold", "released", "failed", "recalled"},
			Help: "qa_hold until lab results release or fail it; recalled after a recall. Set by opspine; changes go through actions."},
		textField("public_id", "Unguessable id in the proof URL (keyed hash, not derivable from the code). Set by opspine; read-only."),
		&core.FileField{Name: "qr_image", MaxSelect: 1, MaxSize: 1 << 20, MimeTypes: []string{"image/png"}, Help: "QR code of the proof URL"},
		&core.FileField{Name: "label_pdf", MaxSelect: 1, MaxSize: 5 << 20, MimeTypes: []string{"application/pdf"}, Help: "Pouch label for the co-packer"},
		dateField("qa_hold_at", ""),
		dateField("released_at", ""),
		dateField("failed_at", ""),
		dateField("recalled_at", ""),
		longText("notes", "Free notes for staff"),
		textField("created_by", "Who created the batch"),
	)
	batches.Fields.Add(timestamps()...)
	batches.AddIndex("idx_batches_code", true, "code", "")
	batches.AddIndex("idx_batches_public_id", true, "public_id", "")
	batches.AddIndex("idx_batches_product_status_expiry", false, "product, status, expiry_date", "")
	batches.AddIndex("idx_batches_status", false, "status, produced_at", "")
	readableByStaff(batches)
	batches.CreateRule = types.Pointer(staffRule)
	batches.UpdateRule = types.Pointer(staffRule)
	if err := app.Save(batches); err != nil {
		return err
	}

	labResults := core.NewBaseCollection("lab_results")
	labResults.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1, Required: true},
		requiredText("lab", "Laboratory that tested the samples"),
		&core.FileField{Name: "report_pdf", MaxSelect: 1, MaxSize: 20 << 20, MimeTypes: []string{"application/pdf"}, Help: "The lab's report", Protected: false},
		&core.SelectField{Name: "salmonella", Values: []string{"absent", "detected"}, MaxSelect: 1, Help: "Salmonella in 25 g; empty when not tested"},
		&core.SelectField{Name: "listeria", Values: []string{"absent", "detected"}, MaxSelect: 1, Help: "Listeria monocytogenes in 25 g; empty when not tested"},
		boolField("enterobacteriaceae_tested", "Whether the report gives Enterobacteriaceae"),
		&core.NumberField{Name: "enterobacteriaceae_cfu_per_g", Min: types.Pointer(0.0), Help: "Enterobacteriaceae in cfu/g (the limit is in config)"},
		jsonField("other_tests", "Further tests: [{name, result, unit, limit, pass}]"),
		&core.SelectField{Name: "outcome", Values: []string{"pass", "fail"}, MaxSelect: 1, Help: "Set by the release rule, not by hand"},
		&core.SelectField{Name: "source", Values: []string{"manual", "email"}, MaxSelect: 1, Help: "Entered by staff or read from a lab email"},
		&core.NumberField{Name: "confidence", Min: types.Pointer(0.0), Max: types.Pointer(1.0), Help: "Parser confidence for results read from PDFs (1 for manual entry)"},
		textField("pdf_sha256", "SHA-256 of the report PDF"),
		dateField("reported_at", "Date on the lab report"),
		textField("entered_by", "Who entered or which job read it"),
		longText("outcome_reason", "Why the release rule decided as it did"),
	)
	labResults.Fields.Add(timestamps()...)
	labResults.AddIndex("idx_lab_results_batch", false, "batch, created", "")
	labResults.AddIndex("idx_lab_results_pdf", false, "pdf_sha256", "pdf_sha256 != ''")
	readableByStaff(labResults)
	labResults.CreateRule = types.Pointer(staffRule)

	history := core.NewBaseCollection("batch_status_history")
	history.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
		textField("from_status", "Empty when the batch was created"),
		requiredText("to_status", ""),
		requiredText("actor", "Who: staff:<id>, superuser:<id>, or a job"),
		longText("reason", "Why"),
		relationField("lab_result", "The lab result that decided it, if any", labResults),
	)
	history.Fields.Add(timestamps()...)
	history.AddIndex("idx_batch_status_history_batch", false, "batch, created", "")
	readableByStaff(history)

	overrides := core.NewBaseCollection("manual_override_audit")
	overrides.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1, Required: true},
		requiredText("batch_code", ""),
		textField("from_status", ""),
		requiredText("to_status", ""),
		requiredText("requester", "Staff member who asked for the override"),
		requiredText("approver", "A different staff member who approved it"),
		&core.TextField{Name: "justification", Required: true, Max: 5000, Help: "Written justification"},
		&core.FileField{Name: "evidence_pdf", MaxSelect: 1, MaxSize: 20 << 20, MimeTypes: []string{"application/pdf"}, Required: true, Help: "Evidence"},
	)
	overrides.Fields.Add(timestamps()...)
	overrides.AddIndex("idx_manual_override_audit_batch", false, "batch, created", "")
	readableByStaff(overrides)

	allocations := core.NewBaseCollection("allocations")
	allocations.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1, Required: true},
		&core.RelationField{Name: "order", CollectionId: orders.Id, MaxSelect: 1, Required: true},
		&core.RelationField{Name: "order_item", CollectionId: orderItems.Id, MaxSelect: 1, Required: true},
		&core.NumberField{Name: "quantity", OnlyInt: true, Min: types.Pointer(1.0), Required: true, Help: "Units of the batch given to the line"},
		selectField("status", "allocated: held for the order; dispatched: left with it; released: returned to the batch",
			"allocated", "dispatched", "released"),
	)
	allocations.Fields.Add(timestamps()...)
	allocations.AddIndex("idx_allocations_batch", false, "batch, status", "")
	allocations.AddIndex("idx_allocations_order", false, "`order`, status", "")
	readableByStaff(allocations)

	events := core.NewBaseCollection("proof_page_events")
	events.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1},
		requiredText("public_id", ""),
		selectField("event", "", "view", "json", "report_download", "not_found"),
		textField("referrer_host", "Host of the referrer only, never the full URL"),
		textField("device_type", "mobile, tablet or desktop, from the user agent"),
	)
	events.Fields.Add(timestamps()...)
	events.AddIndex("idx_proof_page_events_batch", false, "batch, created", "")
	events.AddIndex("idx_proof_page_events_created", false, "event, created", "")
	readableByStaff(events)

	return saveAll(app, labResults, history, overrides, allocations, events)
}
