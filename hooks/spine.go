package hooks

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/jobs"
)

// Spine is opspine wired onto one PocketBase app: the configuration, the ingestion
// processor and pipeline, and the scheduler with its jobs. main.go and the tests build
// it the same way, through Bind.
type Spine struct {
	App       core.App
	Config    config.Config
	Clock     clockwork.Clock
	Processor *ingest.Processor
	Pipeline  *ingest.Pipeline
	Inbox     *ingest.InboxWriter
	Scheduler *jobs.Scheduler
	// ScheduleJobs starts the scheduler at serve (true from Bind). Tests that drive time
	// with a fake clock turn it off and run jobs with Scheduler.RunNow, so that moving
	// the clock never races a scheduled run.
	ScheduleJobs bool
	// started is when Bind ran: the job health check gives every job twice its interval from then.
	started time.Time
}

// Bind wires opspine onto app: at serve it applies the configured shop, starts the
// pipeline and the scheduler and registers the routes; on terminate it stops them
// before PocketBase closes the database.
func Bind(app core.App, cfg config.Config, clock clockwork.Clock) (*Spine, error) {
	s := &Spine{App: app, Config: cfg, Clock: clock, ScheduleJobs: true, started: clock.Now().UTC()}
	s.Processor = &ingest.Processor{
		App:         app,
		MaxAttempts: cfg.WebhookMaxAttempts,
		Backoff:     retry.Backoff{Base: cfg.WebhookRetryBase, Max: cfg.WebhookRetryMax},
		Now:         clock.Now,
	}
	s.Pipeline = ingest.NewPipeline(s.Processor, 16384, app.Logger())
	s.Inbox = ingest.NewInboxWriter(app)
	sched, err := jobs.New(app, clock, cfg.Timezone)
	if err != nil {
		return nil, err
	}
	s.Scheduler = sched
	for _, j := range s.jobList() {
		if err := sched.Register(j); err != nil {
			return nil, err
		}
	}
	// record actions first: each owns one edit the guards would refuse
	s.bindWebhookInboxActions()
	s.bindAlertActions()
	s.bindOutboxActions()
	s.bindBatchRecordHooks()
	s.bindLabResultRecordHooks()
	s.bindInventoryHooks()
	bindDerivedFieldGuards(app)
	bindShopSecretGuard(app)

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		if err := sqlstore.TuneWriter(s.App.NonconcurrentDB()); err != nil {
			return err
		}
		if err := s.applyConfiguredShop(); err != nil {
			return err
		}
		if err := settings.SeedMissing(s.App.DB(), s.now()); err != nil {
			return err
		}
		if err := enableDefaultRateLimits(s.App); err != nil {
			return err
		}
		if _, err := monitor.CloseAbandonedRuns(s.App.DB(), s.now()); err != nil {
			return err
		}
		s.bindShopifyWebhookApi(se)
		s.bindOpsApi(se)
		s.bindProofPages(se)
		s.Inbox.Start()
		s.Pipeline.Start(2)
		if s.ScheduleJobs {
			s.Scheduler.Start()
		}
		return se.Next()
	})
	app.OnTerminate().BindFunc(func(te *core.TerminateEvent) error {
		s.Stop()
		return te.Next()
	})
	return s, nil
}

// Stop stops the scheduler (running jobs see their context cancelled and record their
// outcome), the inbox writer (queued deliveries are committed) and the pipeline (each
// worker finishes the batch in hand).
func (s *Spine) Stop() {
	if err := s.Scheduler.Shutdown(); err != nil {
		s.App.Logger().Warn("scheduler shutdown", slog.String("error", err.Error()))
	}
	s.Inbox.Stop() // the HTTP server has stopped by now: this commits the last deliveries
	s.Pipeline.Stop()
}

func (s *Spine) jobList() []jobs.Job {
	list := []jobs.Job{jobs.WebhookRetry(s.App, s.Processor, s.Config.WebhookRetrySchedule, s.Clock.Now)}
	if s.Config.ShopifyAdminToken != "" {
		list = append(list, jobs.ShopifyReconcile(s.App, s.Processor, s.Config, s.Clock.Now))
	}
	list = append(list, s.outboxJobs()...)
	list = append(list, s.alertJobs()...)
	list = append(list, s.monitorJobs()...)
	list = append(list, s.labEmailJobs()...)
	list = append(list, s.inventoryJobs()...)
	return list
}

func (s *Spine) applyConfiguredShop() error {
	if s.Config.ShopifyShopDomain == "" {
		return nil
	}
	if err := ingest.EnsureShop(s.App, s.Config.ShopifyShopDomain, s.Config.ShopifyWebhookSecrets, s.Config.ShopifyOrderPrefix); err != nil {
		return fmt.Errorf("configure shop %s from the environment: %w", s.Config.ShopifyShopDomain, err)
	}
	return nil
}

// now is the clock every handler uses, so tests on a fake clock see consistent times.
func (s *Spine) now() time.Time { return s.Clock.Now().UTC() }
