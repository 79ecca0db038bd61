// Package sqlstore holds the few helpers opspine's hot paths use to read and write
// PocketBase collections with plain SQL through PocketBase's own connections, instead
// of the generic record machinery (about five times slower per row).
//
// Whatever is written here must look to PocketBase exactly like a record it saved
// itself: a 15-character id, and created/updated in its date layout.
package sqlstore

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// NewID returns a record id in PocketBase's default form.
func NewID() string { return core.GenerateDefaultRandomId() }

// FormatTime renders t as PocketBase stores dates (UTC, millisecond precision); zero is "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(types.DefaultDateLayout)
}

// ParseTime reads a date column written by PocketBase or FormatTime; "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(types.DefaultDateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t, nil
}

// Insert writes one row into table with a new id and created/updated set to now,
// and returns the id.
func Insert(db dbx.Builder, table string, now time.Time, cols dbx.Params) (string, error) {
	id := NewID()
	cols["id"] = id
	ts := FormatTime(now)
	cols["created"] = ts
	cols["updated"] = ts
	if _, err := insert(db, table, cols); err != nil {
		return "", fmt.Errorf("insert into %s: %w", table, err)
	}
	return id, nil
}

// Update sets cols (and updated) on the row with this id.
func Update(db dbx.Builder, table, id string, now time.Time, cols dbx.Params) error {
	cols["updated"] = FormatTime(now)
	if _, err := update(db, table, id, cols); err != nil {
		return fmt.Errorf("update %s %s: %w", table, id, err)
	}
	return nil
}

// insert runs a prepared INSERT inside a PreparedTx, dbx's otherwise.
func insert(db dbx.Builder, table string, cols dbx.Params) (sql.Result, error) {
	if p, ok := db.(*PreparedTx); ok && preparable(cols) {
		return p.Exec(insertSQL(table, cols))
	}
	return db.Insert(table, cols).Execute()
}

// update runs a prepared UPDATE by id inside a PreparedTx, dbx's otherwise.
func update(db dbx.Builder, table, id string, cols dbx.Params) (sql.Result, error) {
	if p, ok := db.(*PreparedTx); ok && preparable(cols) {
		return p.Exec(updateSQL(table, id, cols))
	}
	return db.Update(table, cols, dbx.HashExp{"id": id}).Execute()
}
