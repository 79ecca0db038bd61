package templates

import "time"

// CopackerLabel is the data of email/copacker_label: the pouch label of a new batch,
// sent to the co-packer with the label PDF attached (SOP-PROOF-00, batch creation).
type CopackerLabel struct {
	// BatchCode is the batch's code, e.g. PR-260115-001.
	BatchCode string
	// ProducedOn is the production day, shown in the business time zone.
	ProducedOn time.Time
	// KgProduced is what the co-packer reported, in kilograms.
	KgProduced float64
	// LabelFile is the name of the attached label PDF.
	LabelFile string
	// VerifyURL is the public proof page the QR code on the label opens; empty hides it.
	VerifyURL string
}
