package proof

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/tools/types"
)

// ErrBatchNotFound is returned when no batch has the public id.
var ErrBatchNotFound = errors.New("proof: no batch with that public id")

// BatchProof is what one lookup finds: the public View, and the internal references
// the server needs to count the view and serve the report. Only View is ever shown.
type BatchProof struct {
	View View
	// BatchID is the batch's record id, for proof_page_events.
	BatchID string
	// LabResultID and ReportFile locate the latest lab result's report PDF in storage;
	// ReportFile is empty when the result has none.
	LabResultID string
	ReportFile  string
}

// HasReport reports whether the lab report may be downloaded: only for a released batch
// whose latest lab result carries a report.
func (b *BatchProof) HasReport() bool {
	return b.View.Status == "released" && b.ReportFile != ""
}

// proofRow is the single row findBatchProofSQL returns.
type proofRow struct {
	BatchID        string          `db:"batch_id"`
	Code           string          `db:"code"`
	Status         string          `db:"status"`
	ProducedAt     string          `db:"produced_at"`
	ExpiryDate     string          `db:"expiry_date"`
	ProductName    string          `db:"product_name"`
	StorageLine    string          `db:"storage_instructions"`
	StorageMinC    sql.NullFloat64 `db:"storage_temp_min_c"`
	StorageMaxC    sql.NullFloat64 `db:"storage_temp_max_c"`
	LabResultID    string          `db:"lab_result_id"`
	Lab            string          `db:"lab"`
	Salmonella     string          `db:"salmonella"`
	Listeria       string          `db:"listeria"`
	EnteroTested   bool            `db:"enterobacteriaceae_tested"`
	EnteroCFU      float64         `db:"enterobacteriaceae_cfu_per_g"`
	OtherTests     string          `db:"other_tests"`
	ReportFile     string          `db:"report_pdf"`
	ReportedAt     string          `db:"reported_at"`
	EnteroLimitCfg sql.NullFloat64 `db:"entero_limit"`
}

// findBatchProofSQL reads the batch, its product, its lab result and the
// Enterobacteriaceae limit in one query (the page's only read): the limit the result was
// judged against, else (judged before results kept it) the one in config. The lab result is the
// one that decided the batch's current status (a later partial or repeated report on a
// released batch does not replace it), else the latest. It walks the unique public_id
// index and the (batch, created) indexes of batch_status_history and lab_results.
const findBatchProofSQL = `
SELECT b.id AS batch_id, b.code, b.status, b.produced_at, COALESCE(b.expiry_date, '') AS expiry_date,
	COALESCE(p.name, '') AS product_name, COALESCE(p.storage_instructions, '') AS storage_instructions,
	p.storage_temp_min_c, p.storage_temp_max_c,
	COALESCE(l.id, '') AS lab_result_id, COALESCE(l.lab, '') AS lab,
	COALESCE(l.salmonella, '') AS salmonella, COALESCE(l.listeria, '') AS listeria,
	COALESCE(l.enterobacteriaceae_tested, FALSE) AS enterobacteriaceae_tested,
	COALESCE(l.enterobacteriaceae_cfu_per_g, 0) AS enterobacteriaceae_cfu_per_g,
	COALESCE(l.other_tests, '') AS other_tests, COALESCE(l.report_pdf, '') AS report_pdf,
	COALESCE(l.reported_at, '') AS reported_at,
	COALESCE(NULLIF(l.enterobacteriaceae_limit_cfu_per_g, 0), (SELECT value FROM config WHERE key = {:limit_key})) AS entero_limit
FROM batches b
LEFT JOIN products p ON p.id = b.product
LEFT JOIN lab_results l ON l.id = COALESCE(
	(SELECT h.lab_result FROM batch_status_history h
		WHERE h.batch = b.id AND h.to_status = b.status AND h.lab_result != '' ORDER BY h.created DESC LIMIT 1),
	(SELECT id FROM lab_results WHERE batch = b.id ORDER BY created DESC, id DESC LIMIT 1))
WHERE b.public_id = {:public_id}
LIMIT 1`

// FindBatchProofByPublicID loads the public view of the batch with publicID, dates in
// loc, labelled with brand. It returns ErrBatchNotFound when there is none; callers
// check ValidPublicID first so that junk never reaches the database.
func FindBatchProofByPublicID(db dbx.Builder, publicID, brand string, loc *time.Location) (*BatchProof, error) {
	var r proofRow
	err := db.NewQuery(findBatchProofSQL).
		Bind(dbx.Params{"public_id": publicID, "limit_key": EnterobacteriaceaeLimitKey}).
		One(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBatchNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("proof: load batch %s: %w", publicID, err)
	}
	view, err := buildView(r, brand, publicID, loc)
	if err != nil {
		return nil, fmt.Errorf("proof: batch %s: %w", publicID, err)
	}
	return &BatchProof{View: view, BatchID: r.BatchID, LabResultID: r.LabResultID, ReportFile: r.ReportFile}, nil
}

// dayIn reads a stored PocketBase date as a day in loc. An empty or unreadable date is
// the zero Day, which the page leaves out (PocketBase reads such a date as empty too).
func dayIn(stored string, loc *time.Location) Day {
	dt, _ := types.ParseDateTime(stored) // never fails: unreadable text is the zero time
	if dt.IsZero() {
		return Day{}
	}
	return Day{dt.Time().In(loc)}
}
