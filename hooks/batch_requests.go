package hooks

// Reading staff requests about batches: form or JSON fields, uploaded PDFs, and the
// answers to refused input.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/batches"
)

// batchActionError turns an error of app/batches into an answer a person can act on;
// internal is the message for anything unexpected.
func batchActionError(e *core.RequestEvent, err error, internal string) error {
	var apiErr *router.ApiError
	var inErr *batches.InputError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &inErr):
		return e.BadRequestError(inErr.Message, nil)
	case errors.Is(err, batches.ErrNoSuchBatch):
		return e.NotFoundError("No batch with that id.", nil)
	case errors.Is(err, batches.ErrTransitionNotAllowed):
		var trErr *batches.TransitionError
		if errors.As(err, &trErr) {
			err = trErr
		}
		return e.Error(http.StatusConflict, sentenceCase(err.Error())+".", nil)
	case errors.Is(err, batches.ErrNothingToOverride):
		return e.Error(http.StatusConflict, sentenceCase(err.Error())+"; nothing was changed.", nil)
	}
	if internal == "" {
		internal = "Something went wrong; nothing was changed."
	}
	return e.InternalServerError(internal, err)
}

func batchInputError(field, format string, args ...any) error {
	return &batches.InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// formOrJSONFields reads a multipart form or a JSON object into strings: JSON strings as
// they are, null as empty, numbers, lists and objects as their JSON text.
func formOrJSONFields(e *core.RequestEvent) (map[string]string, error) {
	out := map[string]string{}
	ct := e.Request.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "multipart/form-data"):
		if err := e.Request.ParseMultipartForm(router.DefaultMaxMemory); err != nil {
			return nil, batchInputError("", "Could not read the multipart form: %v", err)
		}
		for k, v := range e.Request.MultipartForm.Value {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
	case strings.HasPrefix(ct, "application/json"):
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(e.Request.Body).Decode(&raw); err != nil {
			return nil, batchInputError("", "The body is not a JSON object: %v", err)
		}
		for k, v := range raw {
			var s string
			switch {
			case json.Unmarshal(v, &s) == nil:
				out[k] = s
			case string(v) == "null":
				out[k] = ""
			default:
				out[k] = string(v)
			}
		}
	default:
		return nil, batchInputError("", "Send multipart/form-data or application/json.")
	}
	return out, nil
}

// uploadedPDFField reads the one file sent as key (nil when none). Whether it is a PDF is
// checked by app/batches, by its content.
func uploadedPDFField(e *core.RequestEvent, key string) (*batches.PDF, error) {
	if !strings.HasPrefix(e.Request.Header.Get("Content-Type"), "multipart/form-data") {
		return nil, nil
	}
	files, err := e.FindUploadedFiles(key)
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, batchInputError(key, "Could not read %s: %v", key, err)
	}
	if len(files) > 1 {
		return nil, batchInputError(key, "Send one %s, not %d.", key, len(files))
	}
	data, err := readUploadedPDF(files[0])
	if err != nil {
		return nil, batchInputError(key, "Could not read %s: %v", key, err)
	}
	return &batches.PDF{Name: files[0].OriginalName, Data: data}, nil
}

// readUploadedPDF reads an uploaded file, at most one byte past the PDF limit (so that an
// oversized file is refused by size, not read whole).
func readUploadedPDF(f *filesystem.File) ([]byte, error) {
	r, err := f.Reader.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, batches.MaxPDFBytes+1))
}

func sentenceCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// csvFileName keeps letters, digits, dash and underscore for a Content-Disposition name.
func csvFileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "batch"
	}
	return b.String()
}
