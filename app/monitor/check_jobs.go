package monitor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opspine/opspine/app/alerts"
)

func init() {
	Register(Check{Name: "job-health", Schedule: "*/5 * * * *", Run: checkJobHealth})
	Register(Check{Name: "heartbeat", Schedule: "*/15 * * * *", Run: checkHeartbeat})
}

// checkJobHealth is a dead-man switch for every job, this check included: a job that
// has not succeeded within twice its interval is critical. A process that started less
// than that ago gives every job that long first.
func checkJobHealth(_ context.Context, env Env) (Result, error) {
	jobs, err := env.Jobs()
	if err != nil {
		return Result{}, err
	}
	var late []string
	figures := map[string]any{"jobs": len(jobs)}
	for _, j := range jobs {
		if j.Interval <= 0 {
			continue
		}
		since := j.LastSuccess
		if since.Before(env.Started) {
			since = env.Started
		}
		if overdue := env.Now.Sub(since); overdue > 2*j.Interval {
			what := "last succeeded " + j.LastSuccess.Format(time.RFC3339)
			if j.LastSuccess.IsZero() {
				what = "never succeeded"
			}
			late = append(late, fmt.Sprintf("%s (%s, every %s)", j.Name, what, j.Interval))
		}
	}
	sort.Strings(late)
	figures["late"] = len(late)
	if len(late) == 0 {
		return Result{Status: StatusOK, Summary: fmt.Sprintf("all %d jobs succeeded within twice their interval", len(jobs)), Figures: figures}, nil
	}
	return Result{Status: StatusCritical, Title: "Scheduled jobs have stopped succeeding", Figures: figures,
		Summary: "Late: " + strings.Join(late, "; "),
		Fields:  []alerts.Field{{Label: "Late jobs", Value: fmt.Sprint(len(late))}}}, nil
}

// checkHeartbeat records that monitoring runs, with the process's vital signs. Its own
// lateness is caught by job-health, and job-health's by this one.
func checkHeartbeat(_ context.Context, env Env) (Result, error) {
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	figures := map[string]any{
		"uptime_seconds": int64(env.Now.Sub(env.Started).Seconds()),
		"goroutines":     runtime.NumGoroutine(),
		"heap_mb":        round1(float64(mem.HeapAlloc) / (1 << 20)),
		"pid":            os.Getpid(),
	}
	var pages, pageSize int64
	if err := env.DB.NewQuery(`SELECT page_count FROM pragma_page_count()`).Row(&pages); err == nil {
		if err := env.DB.NewQuery(`SELECT page_size FROM pragma_page_size()`).Row(&pageSize); err == nil {
			figures["database_mb"] = round1(float64(pages*pageSize) / (1 << 20))
		}
	}
	return Result{Status: StatusOK, Summary: fmt.Sprintf("alive for %s", env.Now.Sub(env.Started).Round(time.Second)), Figures: figures}, nil
}
