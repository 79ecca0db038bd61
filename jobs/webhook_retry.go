package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/ingest"
)

// retryBatch bounds one run; the next run takes the rest.
const retryBatch = 500

// WebhookRetry re-runs failed deliveries whose backoff has passed and pending ones the
// live pipeline never finished (the process stopped after committing them).
func WebhookRetry(app core.App, proc *ingest.Processor, schedule string, now func() time.Time) Job {
	return Job{
		Name: "webhook-retry", Schedule: schedule, Timeout: 4 * time.Minute, RunAtStart: true,
		Run: func(ctx context.Context) (Outcome, error) {
			ids, err := ingest.DueDeliveries(app.DB(), now(), ingest.PendingGrace, retryBatch)
			if err != nil {
				return Outcome{}, err
			}
			counts := map[string]int{}
			for _, id := range ids {
				if ctx.Err() != nil {
					break
				}
				res, err := proc.Process(id)
				if err != nil {
					return Outcome{Figures: figures(len(ids), counts)}, err
				}
				counts[res.Status]++
			}
			out := Outcome{Figures: figures(len(ids), counts),
				Summary: fmt.Sprintf("%d due: %d processed, %d skipped, %d failed again, %d dead",
					len(ids), counts[ingest.StatusProcessed], counts[ingest.StatusSkipped], counts[ingest.StatusFailed], counts[ingest.StatusDead])}
			return out, ctx.Err()
		},
	}
}

func figures(due int, counts map[string]int) map[string]any {
	f := map[string]any{"due": due}
	for k, v := range counts {
		f[k] = v
	}
	return f
}
