package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// Raise opens an alert or updates the open one with the same dedupe key; it queues a
// Slack notification only for a new alert, a raised severity, or when the cooldown since
// the last notification has passed. db may be a transaction's builder.
//
// Without a transaction the writes are ordered so that a failure part-way can repeat a
// notification but never lose one: the alert is marked notified only after its
// notification is queued.
func Raise(db dbx.Builder, now time.Time, a Alert) (id string, notified bool, err error) {
	now = now.UTC()
	if err := a.validate(); err != nil {
		return "", false, err
	}
	if a.Fields == nil {
		a.Fields = []Field{}
	}
	fieldsJSON, err := json.Marshal(a.Fields)
	if err != nil {
		return "", false, fmt.Errorf("raise alert %s: encode fields: %w", a.DedupeKey, err)
	}
	cur, fresh, err := openOrFind(db, now, a, string(fieldsJSON))
	if err != nil {
		return "", false, fmt.Errorf("raise alert %s: %w", a.DedupeKey, err)
	}
	kind, err := nextNotification(db, cur, a.Severity, now)
	if err != nil {
		return cur.ID, false, fmt.Errorf("raise alert %s: %w", a.DedupeKey, err)
	}
	cols := dbx.Params{}
	if !fresh {
		cols = dbx.Params{
			"severity": string(a.Severity), "title": a.Title, "body": a.Body, "fields": string(fieldsJSON),
			"source_check": a.SourceCheck, "last_seen_at": sqlstore.FormatTime(now),
			"occurrences": dbx.NewExp("occurrences + 1"),
		}
		cur.Occurrences++
	}
	if kind != "" {
		msg := message{Kind: kind, Severity: a.Severity, Title: a.Title, Body: a.Body, Fields: a.Fields,
			Source: a.SourceCheck, OpenedAt: cur.opened(), Occurrences: cur.Occurrences}
		if _, err := enqueue(db, now, cur.ID, msg); err != nil {
			return cur.ID, false, fmt.Errorf("raise alert %s: %w", a.DedupeKey, err)
		}
		cols["last_notified_at"] = sqlstore.FormatTime(now)
		cols["notified_severity"] = string(a.Severity)
	}
	if len(cols) > 0 {
		if err := sqlstore.Update(db, "alerts", cur.ID, now, cols); err != nil {
			return cur.ID, false, fmt.Errorf("raise alert %s: %w", a.DedupeKey, err)
		}
	}
	return cur.ID, kind != "", nil
}

func (a Alert) validate() error {
	switch {
	case !a.Severity.Valid():
		return fmt.Errorf("raise alert %q: severity %q is not info, warning or critical", a.DedupeKey, a.Severity)
	case strings.TrimSpace(a.DedupeKey) == "":
		return fmt.Errorf("raise alert %q: a dedupe key is required", a.Title)
	case strings.TrimSpace(a.Title) == "":
		return fmt.Errorf("raise alert %q: a title is required", a.DedupeKey)
	}
	return nil
}

// openOrFind returns the open alert with a's dedupe key, opening it (occurrences 1)
// when there is none; fresh says it was opened now.
func openOrFind(db dbx.Builder, now time.Time, a Alert, fieldsJSON string) (alertRow, bool, error) {
	cur, found, err := findOpenAlert(db, a.DedupeKey)
	if err != nil || found {
		return cur, false, err
	}
	ts := sqlstore.FormatTime(now)
	id, err := sqlstore.Insert(db, "alerts", now, dbx.Params{
		"severity": string(a.Severity), "title": a.Title, "body": a.Body, "fields": fieldsJSON,
		"source_check": a.SourceCheck, "dedupe_key": a.DedupeKey, "state": StateOpen,
		"occurrences": 1, "last_seen_at": ts,
	})
	if err == nil {
		return alertRow{ID: id, Severity: string(a.Severity), DedupeKey: a.DedupeKey, Occurrences: 1, Created: ts}, true, nil
	}
	if !strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return cur, false, err
	}
	// opened at the same moment by another writer: update that one instead
	cur, found, err = findOpenAlert(db, a.DedupeKey)
	if err == nil && !found {
		err = errors.New("the open alert vanished while raising it again")
	}
	return cur, false, err
}

// nextNotification decides what, if anything, to tell Slack about cur raised at sev.
func nextNotification(db dbx.Builder, cur alertRow, sev Severity, now time.Time) (string, error) {
	if cur.LastNotifiedAt == "" {
		return KindFiring, nil
	}
	if sev.rank() > Severity(cur.NotifiedSeverity).rank() {
		return KindEscalated, nil
	}
	last, err := sqlstore.ParseTime(cur.LastNotifiedAt)
	if err != nil {
		return "", err
	}
	if now.Sub(last) < Cooldown.Minutes(db) {
		return "", nil
	}
	// a message still waiting for Slack says the same thing; do not pile reminders behind it
	waiting, err := undeliveredCount(db, cur.ID)
	if err != nil || waiting > 0 {
		return "", err
	}
	return KindReminder, nil
}

// Resolve closes the open alert with this dedupe key (if any) and queues one "resolved" message.
func Resolve(db dbx.Builder, now time.Time, dedupeKey string) (resolved bool, err error) {
	cur, found, err := findOpenAlert(db, dedupeKey)
	if err != nil || !found {
		return false, wrapResolve(dedupeKey, err)
	}
	return true, wrapResolve(dedupeKey, resolve(db, now.UTC(), cur))
}

func wrapResolve(key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("resolve alert %s: %w", key, err)
}

// resolve queues the resolved message (only when Slack was told the alert fired) to
// the channel of the last message, then closes the alert.
func resolve(db dbx.Builder, now time.Time, cur alertRow) error {
	if cur.LastNotifiedAt != "" {
		sev := Severity(cur.NotifiedSeverity)
		if !sev.Valid() {
			sev = Severity(cur.Severity)
		}
		msg := message{Kind: KindResolved, Severity: sev, Title: cur.Title, Source: cur.SourceCheck,
			OpenedAt: cur.opened(), ResolvedAt: now, Occurrences: cur.Occurrences}
		if _, err := enqueue(db, now, cur.ID, msg); err != nil {
			return err
		}
	}
	return sqlstore.Update(db, "alerts", cur.ID, now, dbx.Params{"state": StateResolved, "resolved_at": sqlstore.FormatTime(now)})
}

// PostDigest queues an info message for the digest channel (the daily snapshot), not an alert.
func PostDigest(db dbx.Builder, now time.Time, title, body string, fields []Field) error {
	if strings.TrimSpace(title) == "" {
		return errors.New("post digest: a title is required")
	}
	msg := message{Kind: KindDigest, Severity: Info, Title: title, Body: body, Fields: fields}
	if _, err := enqueue(db, now.UTC(), "", msg); err != nil {
		return fmt.Errorf("post digest %q: %w", title, err)
	}
	return nil
}

// enqueue writes one pending notification about alertID ("" for a digest), due now.
func enqueue(db dbx.Builder, now time.Time, alertID string, msg message) (string, error) {
	payload, err := msg.slackBody()
	if err != nil {
		return "", err
	}
	channel := channelFor(msg.Severity)
	if msg.Kind == KindDigest {
		channel = ChannelDigest
	}
	return sqlstore.Insert(db, "alert_notifications", now, dbx.Params{
		"alert": alertID, "kind": msg.Kind, "severity": string(msg.Severity), "channel": channel,
		"title": truncate(msg.headline(), 2000), "payload": string(payload), "state": NotificationPending,
		"attempts": 0, "next_attempt_at": sqlstore.FormatTime(now),
	})
}
