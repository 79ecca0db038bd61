package ingest

import (
	"errors"
	"fmt"
)

// PermanentError marks a delivery that can never succeed as it is (invalid JSON, an
// order without an id): it goes to dead_letters at once instead of being retried.
type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return e.Reason }

func permanent(format string, args ...any) error {
	return &PermanentError{Reason: fmt.Sprintf(format, args...)}
}

// IsPermanent reports whether err (or anything it wraps) is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
