package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/jobs"
)

func newScheduler(t *testing.T) (*jobs.Scheduler, *clockwork.FakeClock, *runsTable) {
	t.Helper()
	app := testkit.NewApp(t)
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 21, 8, 59, 30, 0, time.UTC))
	s, err := jobs.New(app, clock, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	return s, clock, &runsTable{t: t, db: app}
}

func TestScheduledRunsFollowTheCronScheduleAndWriteMonitoringRuns(t *testing.T) {
	s, clock, app := newScheduler(t)
	var runs atomic.Int32
	err := s.Register(jobs.Job{Name: "every-minute", Schedule: "* * * * *", Timeout: time.Second,
		Run: func(ctx context.Context) (jobs.Outcome, error) {
			runs.Add(1)
			return jobs.Outcome{Summary: "did it", Figures: map[string]any{"n": 1}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	for i := 1; i <= 3; i++ {
		if err := clock.BlockUntilContext(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		waitFor(t, func() bool { return app.count("name = 'every-minute' AND outcome = 'ok'") == i })
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("%d runs after three minutes, want 3", got)
	}
	if n := app.count("name = 'every-minute' AND summary = 'did it' AND json_extract(figures, '$.n') = 1 AND trigger = 'schedule'"); n != 3 {
		t.Errorf("%d complete monitoring_runs rows, want 3", n)
	}
}

func TestRunNowRecordsErrorsTimeoutsAndPanicsAndRefusesAParallelRun(t *testing.T) {
	s, _, app := newScheduler(t)
	release := make(chan struct{})
	must(t, s.Register(jobs.Job{Name: "fails", Schedule: "0 0 1 1 *", Timeout: time.Second,
		Run: func(context.Context) (jobs.Outcome, error) { return jobs.Outcome{}, errors.New("smtp down") }}))
	must(t, s.Register(jobs.Job{Name: "slow", Schedule: "0 0 1 1 *", Timeout: 50 * time.Millisecond,
		Run: func(ctx context.Context) (jobs.Outcome, error) { <-ctx.Done(); return jobs.Outcome{}, ctx.Err() }}))
	must(t, s.Register(jobs.Job{Name: "panics", Schedule: "0 0 1 1 *", Timeout: time.Second,
		Run: func(context.Context) (jobs.Outcome, error) { panic("nil map") }}))
	must(t, s.Register(jobs.Job{Name: "blocks", Schedule: "0 0 1 1 *", Timeout: time.Minute,
		Run: func(ctx context.Context) (jobs.Outcome, error) { <-release; return jobs.Outcome{}, nil }}))
	s.Start()

	cases := []struct{ name, outcome, errPart string }{
		{"fails", monitor.OutcomeError, "smtp down"},
		{"slow", monitor.OutcomeTimeout, "timed out after 50ms"},
		{"panics", monitor.OutcomeError, "panic: nil map"},
	}
	for _, c := range cases {
		run, err := s.RunNow(c.name, "test")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if run.Outcome != c.outcome || !contains(run.Error, c.errPart) {
			t.Errorf("%s: outcome %s error %q, want %s with %q", c.name, run.Outcome, run.Error, c.outcome, c.errPart)
		}
		if n := app.count("name = '" + c.name + "' AND outcome = '" + c.outcome + "'"); n != 1 {
			t.Errorf("%s: %d monitoring_runs rows, want 1", c.name, n)
		}
	}
	done := make(chan struct{})
	go func() { s.RunNow("blocks", "first"); close(done) }()
	waitFor(t, func() bool { return app.count("name = 'blocks' AND outcome = 'running'") == 1 })
	if _, err := s.RunNow("blocks", "second"); !errors.Is(err, jobs.ErrJobRunning) {
		t.Errorf("parallel run: %v, want ErrJobRunning", err)
	}
	close(release)
	<-done
	if _, err := s.RunNow("nope", "test"); !errors.Is(err, jobs.ErrUnknownJob) {
		t.Errorf("unknown job: %v", err)
	}
}

func TestShutdownCancelsARunningJobWhichRecordsItsOutcome(t *testing.T) {
	s, _, app := newScheduler(t)
	must(t, s.Register(jobs.Job{Name: "long", Schedule: "0 0 1 1 *", Timeout: time.Hour,
		Run: func(ctx context.Context) (jobs.Outcome, error) {
			<-ctx.Done()
			return jobs.Outcome{Summary: "stopped"}, ctx.Err()
		}}))
	s.Start()
	go s.RunNow("long", "test")
	waitFor(t, func() bool { return app.count("name = 'long' AND outcome = 'running'") == 1 })
	stopped := make(chan error)
	go func() { stopped <- s.Shutdown() }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not return")
	}
	if n := app.count("name = 'long' AND outcome = 'error' AND error LIKE '%context canceled%'"); n != 1 {
		t.Errorf("cancelled run not recorded as error")
	}
	if _, err := s.RunNow("long", "after"); err == nil {
		t.Errorf("a run after shutdown must be refused")
	}
}

func TestBadScheduleFailsAtRegistration(t *testing.T) {
	s, _, _ := newScheduler(t)
	err := s.Register(jobs.Job{Name: "bad", Schedule: "every minute", Timeout: time.Second,
		Run: func(context.Context) (jobs.Outcome, error) { return jobs.Outcome{}, nil }})
	if err == nil || !contains(err.Error(), "every minute") {
		t.Fatalf("err %v, want one naming the schedule", err)
	}
}
