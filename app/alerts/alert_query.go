package alerts

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// alertRow is the part of an alerts row that raising and resolving need.
type alertRow struct {
	ID               string `db:"id"`
	Severity         string `db:"severity"`
	Title            string `db:"title"`
	SourceCheck      string `db:"source_check"`
	DedupeKey        string `db:"dedupe_key"`
	State            string `db:"state"`
	Occurrences      int    `db:"occurrences"`
	Created          string `db:"created"`
	LastSeenAt       string `db:"last_seen_at"`
	LastNotifiedAt   string `db:"last_notified_at"`
	NotifiedSeverity string `db:"notified_severity"`
}

const alertColumns = `id, severity, title, source_check, dedupe_key, state, occurrences, created, last_seen_at,
	last_notified_at, notified_severity`

// opened is when the alert opened (its created time); zero when unreadable.
func (r alertRow) opened() time.Time {
	t, _ := sqlstore.ParseTime(r.Created)
	return t
}

// findOpenAlert returns the open alert with this dedupe key, or found false.
func findOpenAlert(db dbx.Builder, dedupeKey string) (row alertRow, found bool, err error) {
	err = db.NewQuery(`SELECT ` + alertColumns + ` FROM alerts WHERE dedupe_key = {:key} AND state = 'open'`).
		Bind(dbx.Params{"key": dedupeKey}).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("find open alert: %w", err)
	}
	return row, true, nil
}

// findAlertByID returns one alert, or found false.
func findAlertByID(db dbx.Builder, id string) (row alertRow, found bool, err error) {
	err = db.NewQuery(`SELECT ` + alertColumns + ` FROM alerts WHERE id = {:id}`).Bind(dbx.Params{"id": id}).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("find alert %s: %w", id, err)
	}
	return row, true, nil
}

// undeliveredCount is how many of the alert's notifications are still waiting for Slack.
func undeliveredCount(db dbx.Builder, alertID string) (int, error) {
	var n int
	err := db.NewQuery(`SELECT COUNT(*) FROM alert_notifications
		WHERE alert = {:alert} AND (state = 'pending' OR state = 'failed')`).Bind(dbx.Params{"alert": alertID}).Row(&n)
	if err != nil {
		return 0, fmt.Errorf("count undelivered notifications of alert %s: %w", alertID, err)
	}
	return n, nil
}

// OpenAlerts lists open alerts, most severe first (for the health endpoint and the snapshot).
func OpenAlerts(db dbx.Builder) ([]OpenAlert, error) {
	var rows []alertRow
	err := db.NewQuery(`SELECT ` + alertColumns + ` FROM alerts WHERE state = 'open'
		ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, created, id`).All(&rows)
	if err != nil {
		return nil, fmt.Errorf("list open alerts: %w", err)
	}
	out := make([]OpenAlert, 0, len(rows))
	for _, r := range rows {
		seen, _ := sqlstore.ParseTime(r.LastSeenAt)
		out = append(out, OpenAlert{ID: r.ID, Severity: Severity(r.Severity), Title: r.Title, SourceCheck: r.SourceCheck,
			DedupeKey: r.DedupeKey, OpenedAt: r.opened(), LastSeenAt: seen, Occurrences: r.Occurrences})
	}
	return out, nil
}
