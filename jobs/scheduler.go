// Package jobs runs opspine's scheduled work with gocron: each job has a kebab-case
// name, a cron schedule, a timeout and singleton mode, and every run, scheduled or
// asked for, writes a monitoring_runs row.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase/core"
	"github.com/robfig/cron/v3"

	"github.com/opspine/opspine/app/monitor"
)

// Job is one piece of scheduled work.
type Job struct {
	Name string
	// Kind is "job" (the default) or "check" (a monitoring check: its outcome is the
	// check's status).
	Kind     string
	Schedule string // cron expression, minute resolution, in the business time zone
	Timeout  time.Duration
	// RunAtStart runs the job once as soon as the scheduler starts (to pick up what a
	// stopped process left behind).
	RunAtStart bool
	Run        func(ctx context.Context) (Outcome, error)
}

// Outcome is what a run reports for monitoring_runs.
type Outcome struct {
	Summary string
	Figures map[string]any
	// Status is a check's verdict (ok, warning, critical); empty means ok.
	Status string
	// Alerted says the run raised or updated an alert.
	Alerted bool
}

// Errors of RunNow.
var (
	ErrUnknownJob = errors.New("no job with that name")
	ErrJobRunning = errors.New("the job is already running")
)

type registered struct {
	Job
	mu       sync.Mutex // singleton: held for the whole run, scheduled or manual
	schedule cron.Schedule
}

// Scheduler owns the gocron scheduler and the jobs registered on it.
type Scheduler struct {
	app      core.App
	clock    clockwork.Clock
	cron     gocron.Scheduler
	loc      *time.Location
	ctx      context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	jobs     map[string]*registered
	inFlight sync.WaitGroup
}

// New makes a scheduler on clock (clockwork.NewRealClock() in production, a fake
// clock in tests) in the business time zone.
func New(app core.App, clock clockwork.Clock, loc *time.Location) (*Scheduler, error) {
	gs, err := gocron.NewScheduler(gocron.WithClock(clock), gocron.WithLocation(loc), gocron.WithStopTimeout(20*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jobs: new scheduler: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{app: app, clock: clock, cron: gs, loc: loc, ctx: ctx, cancel: cancel, jobs: map[string]*registered{}}, nil
}

// Register adds a job; its schedule is checked now, so a bad one fails at start.
func (s *Scheduler) Register(j Job) error {
	if j.Name == "" || j.Run == nil || j.Timeout <= 0 {
		return fmt.Errorf("jobs: job %q needs a name, a run function and a timeout", j.Name)
	}
	if j.Kind == "" {
		j.Kind = "job"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.jobs[j.Name]; dup {
		return fmt.Errorf("jobs: job %q registered twice", j.Name)
	}
	schedule, err := cron.ParseStandard(j.Schedule)
	if err != nil {
		return fmt.Errorf("jobs: job %q schedule %q: %w", j.Name, j.Schedule, err)
	}
	r := &registered{Job: j, schedule: schedule}
	opts := []gocron.JobOption{gocron.WithName(j.Name), gocron.WithSingletonMode(gocron.LimitModeReschedule)}
	if j.RunAtStart {
		opts = append(opts, gocron.WithStartAt(gocron.WithStartImmediately()))
	}
	_, err = s.cron.NewJob(gocron.CronJob(j.Schedule, false), gocron.NewTask(func() {
		if _, err := s.run(r, "schedule"); err != nil && !errors.Is(err, ErrJobRunning) {
			s.app.Logger().Warn("job run failed", slog.String("job", j.Name), slog.String("error", err.Error()))
		}
	}), opts...)
	if err != nil {
		return fmt.Errorf("jobs: job %q schedule %q: %w", j.Name, j.Schedule, err)
	}
	s.jobs[j.Name] = r
	return nil
}

// Start begins scheduling.
func (s *Scheduler) Start() { s.cron.Start() }

// Shutdown stops scheduling, cancels the context of running jobs and waits for them
// to return (each records its outcome), up to the stop timeout.
func (s *Scheduler) Shutdown() error {
	s.cancel()
	err := s.cron.Shutdown()
	s.inFlight.Wait()
	return err
}

// RunNow runs the named job at once and waits for it; trigger says who asked
// ("manual:staff:<id>"). A job already running returns ErrJobRunning.
func (s *Scheduler) RunNow(name, trigger string) (monitor.Run, error) {
	s.mu.Lock()
	r, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return monitor.Run{}, ErrUnknownJob
	}
	return s.run(r, trigger)
}

func (s *Scheduler) run(r *registered, trigger string) (monitor.Run, error) {
	if !r.mu.TryLock() {
		return monitor.Run{}, ErrJobRunning
	}
	defer r.mu.Unlock()
	if s.ctx.Err() != nil {
		return monitor.Run{}, fmt.Errorf("jobs: %s: scheduler is shutting down", r.Name)
	}
	s.inFlight.Add(1)
	defer s.inFlight.Done()

	started := s.clock.Now().UTC()
	id, err := monitor.StartRun(s.app.DB(), r.Name, r.Kind, trigger, started)
	if err != nil {
		return monitor.Run{}, fmt.Errorf("jobs: %s: %w", r.Name, err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, r.Timeout)
	defer cancel()
	out, runErr := safeRun(ctx, r.Run)
	finished := s.clock.Now().UTC()
	run := monitor.Run{ID: id, Name: r.Name, Kind: r.Kind, Trigger: trigger, StartedAt: started, FinishedAt: finished,
		DurationMs: finished.Sub(started).Milliseconds(), Outcome: monitor.OutcomeOK, Summary: out.Summary, Figures: out.Figures,
		Alerted: out.Alerted}
	if out.Status != "" {
		run.Outcome = out.Status
	}
	switch {
	case runErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		run.Outcome, run.Error = monitor.OutcomeTimeout, fmt.Sprintf("timed out after %s: %v", r.Timeout, runErr)
	case runErr != nil:
		run.Outcome, run.Error = monitor.OutcomeError, runErr.Error()
	}
	if err := monitor.FinishRun(s.app.DB(), run); err != nil {
		return run, fmt.Errorf("jobs: %s: %w", r.Name, err)
	}
	return run, nil
}

// safeRun turns a panic in a job into an error, so one bad run does not stop the process.
func safeRun(ctx context.Context, fn func(context.Context) (Outcome, error)) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx)
}

// Status is a job as GET /api/ops/jobs lists it.
type Status struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Schedule string `json:"schedule"`
	// Interval is the time between its next two scheduled runs.
	Interval time.Duration `json:"interval_ns"`
	Timeout  string        `json:"timeout"`
	Running  bool          `json:"running"`
	NextRun  time.Time     `json:"next_run,omitzero"`
	LastRun  *monitor.Run  `json:"last_run"`
}

// List returns every job with its last run and next run, by name.
func (s *Scheduler) List() ([]Status, error) {
	s.mu.Lock()
	regs := make([]*registered, 0, len(s.jobs))
	for _, r := range s.jobs {
		regs = append(regs, r)
	}
	s.mu.Unlock()
	sort.Slice(regs, func(i, j int) bool { return regs[i].Name < regs[j].Name })
	out := make([]Status, 0, len(regs))
	for _, r := range regs {
		st := Status{Name: r.Name, Kind: r.Kind, Schedule: r.Schedule, Timeout: r.Timeout.String()}
		if r.mu.TryLock() {
			r.mu.Unlock()
		} else {
			st.Running = true
		}
		// from the schedule itself, so it is known before the scheduler starts
		next := r.schedule.Next(s.clock.Now().In(s.loc))
		st.NextRun, st.Interval = next.UTC(), r.schedule.Next(next).Sub(next)
		last, ok, err := monitor.LastRun(s.app.DB(), r.Name)
		if err != nil {
			return nil, err
		}
		if ok {
			st.LastRun = &last
		}
		out = append(out, st)
	}
	return out, nil
}

// Health lists every job with its interval and last success, for the job health check.
func (s *Scheduler) Health() ([]monitor.JobHealth, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	out := make([]monitor.JobHealth, 0, len(list))
	for _, st := range list {
		last, err := monitor.LastSuccess(s.app.DB(), st.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, monitor.JobHealth{Name: st.Name, Interval: st.Interval, LastSuccess: last})
	}
	return out, nil
}
