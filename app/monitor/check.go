package monitor

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
)

// Status is a check's verdict.
type Status string

// Check statuses, mildest first.
const (
	StatusOK       Status = "ok"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
)

// Worse returns the more severe of two statuses.
func Worse(a, b Status) Status {
	rank := map[Status]int{StatusOK: 0, StatusWarning: 1, StatusCritical: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Result is what a check measured and concluded.
type Result struct {
	Status Status
	// Summary is one line for monitoring_runs and the alert body.
	Summary string
	Figures map[string]any
	// Title and Fields make the alert when Status is not ok.
	Title  string
	Fields []alerts.Field
}

// JobHealth is what the job health check needs to know of a job.
type JobHealth struct {
	Name        string
	Interval    time.Duration
	LastSuccess time.Time // zero: never succeeded
}

// Env is what a check may read: the database, the time, and the process around it.
type Env struct {
	DB  dbx.Builder
	Now time.Time
	// PreviousRun is when this check last ran (zero on its first run).
	PreviousRun time.Time
	// Started is when the process started.
	Started time.Time
	// Jobs lists every scheduled job with its interval and last success.
	Jobs func() ([]JobHealth, error)
	// SlackConfigured says alerts can leave the box at all.
	SlackConfigured bool
}

// Check is a function over the database that returns ok, warning or critical with
// figures. It runs as the job monitor-<Name> on Schedule.
type Check struct {
	Name     string
	Schedule string
	Run      func(ctx context.Context, env Env) (Result, error)
}

var (
	registryMu sync.Mutex
	registry   = map[string]Check{}
)

// Register adds a check; features call it from init. A name used twice panics at start.
func Register(c Check) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[c.Name]; dup {
		panic(fmt.Sprintf("monitor: check %s registered twice", c.Name))
	}
	registry[c.Name] = c
}

// Checks returns every registered check, by name.
func Checks() []Check {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Check, 0, len(registry))
	for _, c := range registry {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// JobName is the scheduler's name for a check.
func JobName(check string) string { return "monitor-" + check }

// AlertKey is the dedupe key of a check's alert.
func AlertKey(check string) string { return "check:" + check }

// RunCheck runs c and turns its verdict into alerts: a warning or critical result
// raises (or updates) the check's alert, an ok result resolves it. It reports whether
// a notification was queued.
func RunCheck(ctx context.Context, c Check, env Env) (Result, bool, error) {
	res, err := c.Run(ctx, env)
	if err != nil {
		return res, false, fmt.Errorf("check %s: %w", c.Name, err)
	}
	if res.Status == "" {
		res.Status = StatusOK
	}
	if res.Status == StatusOK {
		_, err := alerts.Resolve(env.DB, env.Now, AlertKey(c.Name))
		return res, false, err
	}
	severity := alerts.Warning
	if res.Status == StatusCritical {
		severity = alerts.Critical
	}
	title := res.Title
	if title == "" {
		title = c.Name + " is " + string(res.Status)
	}
	_, notified, err := alerts.Raise(env.DB, env.Now, alerts.Alert{
		Severity: severity, Title: title, Body: res.Summary, Fields: res.Fields,
		SourceCheck: c.Name, DedupeKey: AlertKey(c.Name),
	})
	return res, notified, err
}

// level compares a figure with warning and critical thresholds (higher is worse).
func level(value, warning, critical float64) Status {
	switch {
	case value >= critical:
		return StatusCritical
	case value >= warning:
		return StatusWarning
	default:
		return StatusOK
	}
}
