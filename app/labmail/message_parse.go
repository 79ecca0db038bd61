package labmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	_ "github.com/emersion/go-message/charset" // ISO-8859-1, Windows-1252 and other charsets in bodies and headers
	"github.com/emersion/go-message/mail"

	"github.com/opspine/opspine/app/batches"
)

// maxMessageBytes is the largest message read: a few report PDFs.
const maxMessageBytes = 60 << 20

// ParseMessage reads a raw RFC 5322 message: its headers, its text body (decoded to
// UTF-8 from its charset) and its attachments. A message without a Message-ID gets one
// made from its content, so that the same message is still recognised.
func ParseMessage(raw []byte) (Message, error) {
	if len(raw) > maxMessageBytes {
		return Message{}, fmt.Errorf("labmail: message of %d bytes is larger than %d MB", len(raw), maxMessageBytes>>20)
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if r == nil {
		return Message{}, fmt.Errorf("labmail: unreadable message: %w", err)
	}
	defer r.Close()
	var msg Message
	h := r.Header
	msg.MessageID, _ = h.MessageID()
	if msg.MessageID == "" {
		msg.MessageID = "sha256-" + batches.SHA256Hex(raw) + "@opspine.invalid"
	}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		msg.From = from[0].Address
		if from[0].Name != "" {
			msg.From = from[0].Name + " <" + from[0].Address + ">"
		}
	} else {
		msg.From = h.Get("From")
	}
	msg.Subject, _ = h.Subject()
	if t, err := h.Date(); err == nil {
		msg.ReceivedAt = t.UTC()
	}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(msg.Attachments) > 0 || msg.BodyText != "" {
				break // keep what was read of a truncated message
			}
			return msg, fmt.Errorf("labmail: read message part: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(p.Body, maxAttachmentSize+1))
		if err != nil {
			continue // an undecodable part (unknown charset, bad base64) is skipped
		}
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			if name := partFileName(ph.Get("Content-Type")); name != "" || batches.IsPDF(data) {
				msg.Attachments = append(msg.Attachments, Attachment{Name: name, ContentType: ct, Data: data})
				continue
			}
			if strings.HasPrefix(ct, "text/plain") || (ct == "" && msg.BodyText == "") {
				msg.BodyText += string(data)
			}
		case *mail.AttachmentHeader:
			name, _ := ph.Filename()
			ct, _, _ := ph.ContentType()
			msg.Attachments = append(msg.Attachments, Attachment{Name: name, ContentType: ct, Data: data})
		}
	}
	return msg, nil
}

// partFileName is the name= parameter of an inline part's Content-Type, if any.
func partFileName(contentType string) string {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return params["name"]
}
