package benchmark

import (
	"fmt"
	"time"

	"github.com/opspine/opspine/app/batches"
)

// MeasureLabelPDFs makes n pouch labels in-process as batch creation does (a public
// id, the QR code of its proof URL, the stored QR PNG and the label PDF at the default
// 62 × 29 mm) and returns labels per second. No database: this is the CPU cost of
// the label, the part of a batch creation that grows with the label's content.
func MeasureLabelPDFs(n int) (perSecond float64, err error) {
	if n < 1 {
		return 0, fmt.Errorf("label PDFs: n must be at least 1")
	}
	tz, err := time.LoadLocation("Europe/London")
	if err != nil {
		return 0, err
	}
	key := []byte("opspine bench public id key 0123456789abcdef")
	size := batches.LabelSize{WidthMM: 62, HeightMM: 29}
	day := batches.StartOfDay(time.Now(), tz)
	started := time.Now()
	for i := range n {
		publicID, err := batches.NewPublicID(key, fmt.Sprintf("benchbatch%05d", i%100000))
		if err != nil {
			return 0, err
		}
		url := batches.ProofURL("https://proof.example.com", publicID)
		qr, err := batches.NewQR(url)
		if err != nil {
			return 0, err
		}
		if _, err := qr.PNG(batches.QRImageModulePixels); err != nil {
			return 0, err
		}
		_, err = batches.RenderLabelPDF(batches.Label{
			ProductName: "Beef & Tripe Complete", BatchCode: fmt.Sprintf("B-%s-%03d", day.Format("060102"), i%1000+1),
			ProducedOn: day, UseBy: day.AddDate(0, 0, 180), Storage: "Keep frozen at -18°C or below", ProofURL: url,
		}, qr, size)
		if err != nil {
			return 0, fmt.Errorf("label PDFs: %w", err)
		}
	}
	return float64(n) / time.Since(started).Seconds(), nil
}
