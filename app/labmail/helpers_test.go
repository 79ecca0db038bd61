package labmail_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/go-pdf/fpdf"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// reportPDF makes a lab report PDF with fpdf: a header, then rows of cells placed at
// the given x positions (mm), the way lab reports lay out their tables.
func reportPDF(t testing.TB, title string, rows [][]string) []byte {
	t.Helper()
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(true)
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 14)
	pdf.Cell(0, 10, title)
	pdf.Ln(12)
	pdf.SetFont("Helvetica", "", 10)
	for _, row := range rows {
		y := pdf.GetY()
		x := 10.0
		for i, cell := range row {
			pdf.SetXY(x, y)
			w := 60.0
			if i == 0 {
				w = 70
			}
			pdf.Cell(w, 7, cell)
			x += w
		}
		pdf.Ln(8)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatalf("fpdf: %v", err)
	}
	return buf.Bytes()
}

// scannedPDF is a PDF with an image and no text, as a scanner makes.
func scannedPDF(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 200, 100))
	for x := 0; x < 200; x++ {
		for y := 0; y < 100; y++ {
			img.SetGray(x, y, color.Gray{Y: uint8((x * y) % 256)})
		}
	}
	var png_ bytes.Buffer
	if err := png.Encode(&png_, img); err != nil {
		t.Fatal(err)
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.AddPage()
	pdf.RegisterImageOptionsReader("scan", fpdf.ImageOptions{ImageType: "PNG"}, &png_)
	pdf.ImageOptions("scan", 10, 10, 190, 95, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// corruptPDF starts like a PDF and is broken after.
func corruptPDF() []byte {
	return []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\nxref\n0 3\ngarbage garbage\ntrailer << /Size 3 /Root 1 0 R >>\nstartxref\n99999\n%%EOF\n")
}

type part struct {
	Name, ContentType string
	Data              []byte
}

var msgSeq atomic.Int64

// mimeMessage builds a multipart email with a text body in charset and attachments.
func mimeMessage(from, subject, body, charset string, parts ...part) (raw []byte, messageID string) {
	n := msgSeq.Add(1)
	messageID = fmt.Sprintf("<lab-%d-%d@lab.example>", n, time.Now().UnixNano())
	var b strings.Builder
	boundary := fmt.Sprintf("b%d", n)
	fmt.Fprintf(&b, "From: %s\r\nTo: lab@opspine.example\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n",
		from, subject, t0.Format(time.RFC1123Z), messageID)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=%s\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n", boundary, charset, body)
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			boundary, p.ContentType, p.Name, p.Name)
		enc := base64.StdEncoding.EncodeToString(p.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String()), strings.Trim(messageID, "<>")
}

func pdfPart(name string, data []byte) part {
	return part{Name: name, ContentType: "application/pdf", Data: data}
}

// imapServer is the real go-imap v2 server with an in-memory mailbox on 127.0.0.1.
type imapServer struct {
	Addr string
	user *imapmemserver.User
}

const imapUser, imapPass = "lab@opspine.example", "secret-pass"

func startIMAP(t testing.TB) *imapServer {
	t.Helper()
	addr, user := testkit.StartIMAP(t, imapUser, imapPass)
	return &imapServer{Addr: addr, user: user}
}

// deliver appends a message to the mailbox as the lab's mail server would.
func (s *imapServer) deliver(t testing.TB, mailbox string, raw []byte) {
	t.Helper()
	c := s.client(t)
	defer c.Close()
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func (s *imapServer) client(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(imapUser, imapPass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// unseen counts the messages of mailbox without \Seen.
func (s *imapServer) status(t testing.TB, mailbox string) (messages, unseen uint32) {
	t.Helper()
	c := s.client(t)
	defer c.Close()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true}).Wait()
	if err != nil {
		t.Fatalf("status %s: %v", mailbox, err)
	}
	return *st.NumMessages, *st.NumUnseen
}

// makeBatch makes a batch on qa_hold with code (as batch creation leaves it).
func makeBatch(t testing.TB, app core.App, code string) string {
	t.Helper()
	n := msgSeq.Add(1)
	pcol, err := app.FindCollectionByNameOrId("products")
	if err != nil {
		t.Fatal(err)
	}
	prod := core.NewRecord(pcol)
	prod.Set("sku", fmt.Sprintf("RAW-%d", n))
	prod.Set("name", "Raw beef")
	prod.Set("active", true)
	if err := app.Save(prod); err != nil {
		t.Fatal(err)
	}
	bcol, err := app.FindCollectionByNameOrId("batches")
	if err != nil {
		t.Fatal(err)
	}
	b := core.NewRecord(bcol)
	for k, v := range map[string]any{"code": code, "product": prod.Id, "produced_at": t0.Add(-72 * time.Hour), "quantity_units": 500,
		"kg_produced": 250, "status": "qa_hold", "qa_hold_at": t0.Add(-72 * time.Hour), "public_id": fmt.Sprintf("pub%dxxxxxxxxxxxx", n)} {
		b.Set(k, v)
	}
	if err := app.Save(b); err != nil {
		t.Fatalf("make batch %s: %v", code, err)
	}
	return b.Id
}

func batchStatus(t testing.TB, app core.App, id string) string {
	t.Helper()
	b, err := app.FindRecordById("batches", id)
	if err != nil {
		t.Fatal(err)
	}
	return b.GetString("status")
}
