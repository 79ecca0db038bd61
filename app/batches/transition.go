package batches

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
)

// Batch statuses. A batch starts on qa_hold; lab results release or fail it; a recall
// ends it. Transition is the only way from one to another.
const (
	StatusQAHold   = "qa_hold"
	StatusReleased = "released"
	StatusFailed   = "failed"
	StatusRecalled = "recalled"
)

// allowedNext lists, for each status, the statuses a batch may move to.
var allowedNext = map[string][]string{
	StatusQAHold:   {StatusReleased, StatusFailed, StatusRecalled},
	StatusReleased: {StatusRecalled},
	StatusFailed:   {StatusRecalled},
	StatusRecalled: nil,
}

// Errors of the batch state changes.
var (
	ErrNoSuchBatch          = errors.New("no such batch")
	ErrTransitionNotAllowed = errors.New("status change not allowed")
)

// TransitionError says why a status change was refused and what is allowed instead.
type TransitionError struct {
	Code, From, To string
}

func (e *TransitionError) Error() string {
	next := AllowedNext(e.From)
	if len(next) == 0 {
		return fmt.Sprintf("batch %s is %s, which is final: it cannot become %s", e.Code, e.From, e.To)
	}
	return fmt.Sprintf("batch %s is %s: it can become %s, not %s", e.Code, e.From, strings.Join(next, " or "), e.To)
}

// Unwrap makes errors.Is(err, ErrTransitionNotAllowed) true.
func (e *TransitionError) Unwrap() error { return ErrTransitionNotAllowed }

// IsStatus reports whether s is one of the four batch statuses.
func IsStatus(s string) bool {
	_, ok := allowedNext[s]
	return ok
}

// AllowedNext returns the statuses a batch in status from may move to.
func AllowedNext(from string) []string { return slices.Clone(allowedNext[from]) }

// CanTransition reports whether a batch may move from one status to another.
func CanTransition(from, to string) bool { return slices.Contains(allowedNext[from], to) }

// Change is what Transition did: the batch went From → To, or nothing changed because
// it was already in To.
type Change struct {
	BatchID string `json:"batch_id"`
	Code    string `json:"batch_code"`
	From    string `json:"from_status"`
	To      string `json:"to_status"`
	Changed bool   `json:"changed"`
}

// Transition moves a batch to status to: it checks the move is allowed, sets the status
// and its *_at time, writes a batch_status_history row and an ops_events row, and runs
// the OnReleased or OnRecalled hooks, all in the caller's transaction when app is a
// transaction's app (in its own otherwise). A batch already in to is left as it is.
// actor is "staff:<id>", "superuser:<id>" or a job name; labResultID may be empty.
func Transition(app core.App, batchID, to, actor, reason, labResultID string, now time.Time) (Change, error) {
	now = now.UTC()
	if actor == "" {
		actor = opsevents.ActorSystem
	}
	ch := Change{BatchID: batchID, To: to}
	if !IsStatus(to) {
		return ch, fmt.Errorf("batch %s: %q is not a batch status (qa_hold, released, failed, recalled): %w", batchID, to, ErrTransitionNotAllowed)
	}
	err := app.RunInTransaction(func(txApp core.App) error {
		batch, err := findBatch(txApp, batchID)
		if err != nil {
			return err
		}
		ch.Code, ch.From = batch.GetString("code"), batch.GetString("status")
		if ch.From == to {
			return nil
		}
		if !CanTransition(ch.From, to) {
			return &TransitionError{Code: ch.Code, From: ch.From, To: to}
		}
		batch.Set("status", to)
		batch.Set(to+"_at", now)
		if err := txApp.Save(batch); err != nil {
			return fmt.Errorf("batch %s: save status %s: %w", ch.Code, to, err)
		}
		if err := writeHistory(txApp, batchID, ch.From, to, actor, reason, labResultID); err != nil {
			return fmt.Errorf("batch %s: %w", ch.Code, err)
		}
		if err := opsevents.Record(txApp.DB(), now, opsevents.Event{
			EntityType: "batch", EntityID: batchID, Kind: "batch." + to, Actor: actor,
			Message: fmt.Sprintf("Batch %s went from %s to %s: %s", ch.Code, ch.From, to, clipRunes(reason, 300)),
			Meta:    map[string]any{"from_status": ch.From, "to_status": to, "lab_result": labResultID, "batch_code": ch.Code},
		}); err != nil {
			return fmt.Errorf("batch %s: %w", ch.Code, err)
		}
		ch.Changed = true
		return runTransitionHooks(txApp, to, batchID)
	})
	return ch, err
}

// findBatch reads a batch record, or ErrNoSuchBatch.
func findBatch(app core.App, batchID string) (*core.Record, error) {
	rec, err := app.FindRecordById("batches", batchID)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && rec == nil) {
		return nil, fmt.Errorf("batch %q: %w", batchID, ErrNoSuchBatch)
	}
	if err != nil {
		return nil, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	return rec, nil
}

func writeHistory(app core.App, batchID, from, to, actor, reason, labResultID string) error {
	col, err := app.FindCachedCollectionByNameOrId("batch_status_history")
	if err != nil {
		return fmt.Errorf("status history: %w", err)
	}
	rec := core.NewRecord(col)
	rec.Set("batch", batchID)
	rec.Set("from_status", from)
	rec.Set("to_status", to)
	rec.Set("actor", actor)
	rec.Set("reason", reason)
	rec.Set("lab_result", labResultID)
	if err := app.Save(rec); err != nil {
		return fmt.Errorf("write status history %s → %s: %w", from, to, err)
	}
	return nil
}

// clipRunes shortens s to at most n runes, for messages and alert bodies.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
