package outbox_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// part is one leaf of a received MIME message, decoded.
type part struct {
	ContentType string
	Filename    string
	Body        []byte
}

// parsedMessage is a received message: its headers and its leaves in order, with the
// multipart types met on the way ("multipart/mixed", "multipart/alternative").
type parsedMessage struct {
	Header     mail.Header
	Multiparts []string
	Parts      []part
}

func (m parsedMessage) part(contentType string) (part, bool) {
	for _, p := range m.Parts {
		if p.ContentType == contentType {
			return p, true
		}
	}
	return part{}, false
}

func parseMIME(t *testing.T, raw []byte) parsedMessage {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	out := parsedMessage{Header: msg.Header}
	walkPart(t, &out, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
	return out
}

func walkPart(t *testing.T, out *parsedMessage, contentType, encoding, disposition string, body io.Reader) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatalf("content type %q: %v", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		out.Multiparts = append(out.Multiparts, mediaType)
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("next part of %s: %v", mediaType, err)
			}
			walkPart(t, out, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p)
		}
	}
	switch strings.ToLower(encoding) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("decode %s part: %v", mediaType, err)
	}
	name := ""
	if _, dp, err := mime.ParseMediaType(disposition); err == nil {
		name = dp["filename"]
	}
	out.Parts = append(out.Parts, part{ContentType: mediaType, Filename: name, Body: data})
}
