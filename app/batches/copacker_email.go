package batches

import (
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/templates"
)

// CopackerTemplate is the email template of the co-packer's label email.
const CopackerTemplate = "copacker_label"

// ProofURL is the public proof page of the batch with this public id.
func ProofURL(publicURL, publicID string) string {
	return strings.TrimRight(publicURL, "/") + "/proof/" + publicID
}

// LabelFileName is the label PDF's name as attached to the co-packer's email.
func LabelFileName(code string) string { return code + "-label.pdf" }

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
