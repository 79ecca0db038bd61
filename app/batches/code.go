package batches

import (
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/tools/types"
)

// A batch code is <PREFIX>-YYMMDD-NNN: the production day in business time and the
// day's sequence, 001 upwards (four digits past 999).

// CodeDayPrefix is the part of a code before its sequence: "B-261121-". day is read
// in its own location: pass a time in the business time zone (StartOfDay(t, tz)).
func CodeDayPrefix(prefix string, day time.Time) string {
	return prefix + "-" + day.Format("060102") + "-"
}

// NextCode returns the next code for day (see CodeDayPrefix): the highest sequence of
// that day's codes plus one. Create reads it in the transaction that writes the
// batch, once that transaction is SQLite's writer, so no one else can take the code
// before the commit.
func NextCode(db dbx.Builder, prefix string, day time.Time) (string, error) {
	dayPrefix := CodeDayPrefix(prefix, day)
	// the range (not LIKE) lets SQLite use the unique index on code; '.' follows '-'
	var last int
	err := db.NewQuery(`SELECT COALESCE(MAX(CAST(substr(code, {:from}) AS INTEGER)), 0) FROM batches
		WHERE code >= {:lo} AND code < {:hi}`).
		Bind(dbx.Params{"from": len(dayPrefix) + 1, "lo": dayPrefix, "hi": strings.TrimSuffix(dayPrefix, "-") + "."}).
		Row(&last)
	if err != nil {
		return "", fmt.Errorf("next batch code for %s: %w", strings.TrimSuffix(dayPrefix, "-"), err)
	}
	return fmt.Sprintf("%s%03d", dayPrefix, last+1), nil
}

// StartOfDay is midnight at the start of t's day in tz (the day's first instant when a
// clock change skips midnight).
func StartOfDay(t time.Time, tz *time.Location) time.Time {
	l := t.In(tz)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, tz)
}

// MiddayOf is noon, business time, on t's day there: how a calendar date (an expiry
// date, a production date given without a time) is stored, so that it reads as the
// same date in UTC (the admin UI) and in business time.
func MiddayOf(t time.Time, tz *time.Location) time.Time {
	l := t.In(tz)
	return time.Date(l.Year(), l.Month(), l.Day(), 12, 0, 0, 0, tz)
}

// ParseDateOrTime reads a date or time as staff send it: a date (2026-11-21) gives the
// start of that day in tz and dateOnly; a time is RFC 3339 (2026-11-21T09:30:00Z) or
// PocketBase's layout (2026-11-21 09:30:00.000Z).
func ParseDateOrTime(s string, tz *time.Location) (t time.Time, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(time.DateOnly, s, tz); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, false, nil
	}
	if dt, err := types.ParseDateTime(s); err == nil && !dt.IsZero() && strings.ContainsAny(s, "Zz+") {
		return dt.Time(), false, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date (2026-11-21) or an RFC 3339 time (2026-11-21T09:30:00Z)", s)
}

// FormatLabelDate prints t's day in tz the way labels and pages show dates: 21 Nov 2026.
func FormatLabelDate(t time.Time, tz *time.Location) string {
	return t.In(tz).Format("2 Jan 2006")
}
