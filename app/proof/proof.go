// Package proof is the public proof portal's rules (SOP-PROOF-01): what a customer who
// scanned the QR on a pouch may see about its batch, how that is rendered, and the
// proof_page_events rows that count the views. Nothing here knows about HTTP routes;
// hooks/spine_proof.go binds it.
//
// The public view carries no personal data and no internal record ids: it is built
// from the batch, its product and its latest lab result, and names the batch only by
// its code and public id.
package proof

import (
	"encoding/json"
	"time"
)

// Verdict is the one-word answer the page gives for a batch.
type Verdict string

// Verdicts, one per batch status.
const (
	VerdictPass     Verdict = "pass"             // released
	VerdictFail     Verdict = "fail"             // failed its lab tests
	VerdictAwaiting Verdict = "awaiting_results" // on QA hold
	VerdictRecalled Verdict = "recalled"         // recalled: do not feed
)

// View is the public view of one batch: what the proof page shows and
// GET /api/proof/{public_id} returns.
type View struct {
	Brand     string `json:"brand"`
	PublicID  string `json:"public_id"`
	BatchCode string `json:"batch_code"`
	Product   string `json:"product"`
	// Storage is the product's storage line, e.g. "Keep frozen at -18 °C or below".
	Storage    string `json:"storage,omitempty"`
	ProducedOn Day    `json:"produced_on,omitzero"`
	UseBy      Day    `json:"use_by,omitzero"`
	// Status is the batch status as stored: qa_hold, released, failed or recalled.
	Status   string  `json:"status"`
	Verdict  Verdict `json:"verdict"`
	Headline string  `json:"headline"`
	Message  string  `json:"message"`
	// Lab and ReportedOn say who tested the batch and when; empty before results.
	Lab        string `json:"lab,omitempty"`
	ReportedOn Day    `json:"reported_on,omitzero"`
	Tests      []Test `json:"tests"`
	// ReportURL is the lab report download, set only for a released batch with a report.
	ReportURL string `json:"report_url,omitempty"`
}

// Test is one lab test as the customer sees it.
type Test struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Limit  string `json:"limit"`
	// Pass is nil when the report does not say.
	Pass *bool `json:"pass"`
}

// Passed reports whether the test is known to have passed (for templates).
func (t Test) Passed() bool { return t.Pass != nil && *t.Pass }

// Failed reports whether the test is known to have failed (for templates).
func (t Test) Failed() bool { return t.Pass != nil && !*t.Pass }

// Day is a calendar day in the business time zone.
type Day struct{ time.Time }

// String is the day as people read it on the page, e.g. 21 Nov 2026.
func (d Day) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format("2 Jan 2006")
}

// ISO is the day as YYYY-MM-DD, for <time datetime> and JSON.
func (d Day) ISO() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(time.DateOnly)
}

// MarshalJSON writes the day as "YYYY-MM-DD".
func (d Day) MarshalJSON() ([]byte, error) { return json.Marshal(d.ISO()) }
