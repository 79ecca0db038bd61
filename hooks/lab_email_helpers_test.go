package hooks_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/go-pdf/fpdf"

	"github.com/opspine/opspine/app/testkit"
)

// Helpers of the lab email tests: a real go-imap v2 server on 127.0.0.1, lab report
// PDFs made with fpdf, and emails carrying them.

const labIMAPUser, labIMAPPass = "lab@opspine.example", "imap-secret"

// startLabIMAP serves an in-memory mailbox with an INBOX and returns its address.
func startLabIMAP(t *testing.T) string {
	t.Helper()
	addr, _ := testkit.StartIMAP(t, labIMAPUser, labIMAPPass)
	return addr
}

// startWithLabMailbox starts opspine configured to poll a fresh IMAP server.
func startWithLabMailbox(t *testing.T) (*testkit.Server, string) {
	t.Helper()
	addr := startLabIMAP(t)
	s := start(t, map[string]string{
		"OPSPINE_LAB_IMAP_ADDR": addr, "OPSPINE_LAB_IMAP_USERNAME": labIMAPUser, "OPSPINE_LAB_IMAP_PASSWORD": labIMAPPass,
		"OPSPINE_LAB_IMAP_TLS": "off",
	})
	return s, addr
}

// deliverLabEmail appends an email with a PDF attachment to INBOX.
func deliverLabEmail(t *testing.T, addr, from string, pdf []byte) {
	t.Helper()
	raw := labEmail(from, pdf)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(labIMAPUser, labIMAPPass).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := c.Append("INBOX", int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

var labEmailSeq atomic.Int64

func labEmail(from string, pdf []byte) []byte {
	n := labEmailSeq.Add(1)
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: lab@opspine.example\r\nSubject: Results %d\r\nDate: Fri, 20 Nov 2026 09:00:00 +0000\r\nMessage-ID: <hooks-lab-%d@lab.example>\r\nMIME-Version: 1.0\r\n", from, n, n)
	b.WriteString("Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n")
	b.WriteString("--xx\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(base64.StdEncoding.EncodeToString(pdf))
	b.WriteString("\r\n--xx--\r\n")
	return []byte(b.String())
}

// labReportPDF writes lines of text cells, one row per line, with fpdf.
func labReportPDF(t *testing.T, rows ...[]string) []byte {
	t.Helper()
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.AddPage()
	pdf.SetFont("Helvetica", "", 10)
	for _, row := range rows {
		y := pdf.GetY()
		for i, cell := range row {
			pdf.SetXY(10+float64(i)*80, y)
			pdf.Cell(80, 7, cell)
		}
		pdf.Ln(8)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
