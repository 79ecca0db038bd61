// Package monitor owns monitoring_runs: one row per run of every job and check, which
// the job health check (a dead-man switch per job) and GET /api/ops/jobs read.
package monitor

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// Outcomes of a run.
const (
	OutcomeRunning = "running"
	OutcomeOK      = "ok"
	OutcomeError   = "error"
	OutcomeTimeout = "timeout"
	// Outcomes of a check run, besides error and timeout.
	OutcomeWarning  = "warning"
	OutcomeCritical = "critical"
)

// Run is one monitoring_runs row.
type Run struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Outcome    string         `json:"outcome"`
	Trigger    string         `json:"trigger"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at,omitzero"`
	DurationMs int64          `json:"duration_ms"`
	Summary    string         `json:"summary,omitempty"`
	Error      string         `json:"error,omitempty"`
	Figures    map[string]any `json:"figures,omitempty"`
	Alerted    bool           `json:"alerted"`
}

// StartRun writes a running row before the work starts, so a run that never finishes
// (the process died) still shows.
func StartRun(db dbx.Builder, name, kind, trigger string, started time.Time) (string, error) {
	return sqlstore.Insert(db, "monitoring_runs", started, dbx.Params{
		"name": name, "kind": kind, "outcome": OutcomeRunning, "trigger": trigger,
		"started_at": sqlstore.FormatTime(started), "figures": "null",
	})
}

// FinishRun completes the row written by StartRun.
func FinishRun(db dbx.Builder, r Run) error {
	figures := []byte("null")
	if r.Figures != nil {
		var err error
		if figures, err = json.Marshal(r.Figures); err != nil {
			return fmt.Errorf("finish run %s: encode figures: %w", r.Name, err)
		}
	}
	return sqlstore.Update(db, "monitoring_runs", r.ID, r.FinishedAt, dbx.Params{
		"outcome": r.Outcome, "finished_at": sqlstore.FormatTime(r.FinishedAt), "duration_ms": r.DurationMs,
		"summary": r.Summary, "error": r.Error, "figures": string(figures), "alerted": r.Alerted,
	})
}

// AbandonedSummary is the summary of a run a stopped process left running.
const AbandonedSummary = "opspine stopped during this run (killed, crashed or the machine went down); it did not finish"

// CloseAbandonedRuns marks the runs a stopped process left running as errors, so the
// jobs list and the admin UI do not show them running for ever. Call it at start,
// before any job runs. It returns how many it closed.
func CloseAbandonedRuns(db dbx.Builder, now time.Time) (int64, error) {
	res, err := db.NewQuery(`UPDATE monitoring_runs SET outcome = 'error', finished_at = {:now}, updated = {:now},
		summary = {:summary}, error = {:summary} WHERE outcome = 'running'`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(now), "summary": AbandonedSummary}).Execute()
	if err != nil {
		return 0, fmt.Errorf("close runs left running: %w", err)
	}
	return res.RowsAffected()
}

// LastRun returns the newest run of name, or ok false when it never ran.
func LastRun(db dbx.Builder, name string) (Run, bool, error) {
	var row struct {
		ID         string `db:"id"`
		Name       string `db:"name"`
		Kind       string `db:"kind"`
		Outcome    string `db:"outcome"`
		Trigger    string `db:"trigger"`
		StartedAt  string `db:"started_at"`
		FinishedAt string `db:"finished_at"`
		DurationMs int64  `db:"duration_ms"`
		Summary    string `db:"summary"`
		Error      string `db:"error"`
		Figures    string `db:"figures"`
		Alerted    bool   `db:"alerted"`
	}
	err := db.NewQuery(`SELECT id, name, kind, outcome, trigger, started_at, finished_at, duration_ms, summary, error,
		COALESCE(figures, 'null') AS figures, alerted FROM monitoring_runs WHERE name = {:name} ORDER BY started_at DESC LIMIT 1`).
		Bind(dbx.Params{"name": name}).One(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("last run of %s: %w", name, err)
	}
	r := Run{ID: row.ID, Name: row.Name, Kind: row.Kind, Outcome: row.Outcome, Trigger: row.Trigger,
		DurationMs: row.DurationMs, Summary: row.Summary, Error: row.Error, Alerted: row.Alerted}
	if r.StartedAt, err = sqlstore.ParseTime(row.StartedAt); err != nil {
		return r, true, err
	}
	if r.FinishedAt, err = sqlstore.ParseTime(row.FinishedAt); err != nil {
		return r, true, err
	}
	_ = json.Unmarshal([]byte(row.Figures), &r.Figures)
	return r, true, nil
}

// LastSuccess returns when name last finished without error or timeout (a check that
// reported warning or critical did run), or the zero time.
func LastSuccess(db dbx.Builder, name string) (time.Time, error) {
	var finished string
	err := db.NewQuery(`SELECT finished_at FROM monitoring_runs WHERE name = {:name}
		AND outcome IN ('ok', 'warning', 'critical') ORDER BY started_at DESC LIMIT 1`).
		Bind(dbx.Params{"name": name}).Row(&finished)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last success of %s: %w", name, err)
	}
	return sqlstore.ParseTime(finished)
}

// PreviousRunStart returns when name last started before `before` (its current run is
// already written as running), or ok false.
func PreviousRunStart(db dbx.Builder, name string, before time.Time) (time.Time, bool, error) {
	var started string
	err := db.NewQuery(`SELECT started_at FROM monitoring_runs WHERE name = {:name} AND started_at < {:before}
		ORDER BY started_at DESC LIMIT 1`).Bind(dbx.Params{"name": name, "before": sqlstore.FormatTime(before)}).Row(&started)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("previous run of %s: %w", name, err)
	}
	t, err := sqlstore.ParseTime(started)
	return t, err == nil, err
}
