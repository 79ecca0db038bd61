package proof_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/proof"
	"github.com/opspine/opspine/app/testkit"
)

func viewEvent(i int) proof.Event {
	return proof.Event{PublicID: fmt.Sprintf("pid%013d", i), Kind: proof.EventView, DeviceType: proof.DeviceMobile, At: time.Now().UTC()}
}

// TestEventRecorderWritesEverythingByClose checks that every recorded event is in
// proof_page_events once Close returns.
func TestEventRecorderWritesEverythingByClose(t *testing.T) {
	app := testkit.NewApp(t)
	rec := proof.NewEventRecorder(app)
	const n = 1000
	for i := range n {
		rec.Record(viewEvent(i))
	}
	rec.Close()
	if got := testkit.Count(t, app, "proof_page_events", "", nil); got != n || rec.Written() != n || rec.Dropped() != 0 {
		t.Errorf("%d rows, %d written, %d dropped; want %d, %d, 0", got, rec.Written(), rec.Dropped(), n, n)
	}
	rec.Record(viewEvent(n))
	rec.Close() // twice is fine
	if rec.Dropped() != 1 {
		t.Errorf("an event after Close: %d dropped, want 1 (counted, not lost silently)", rec.Dropped())
	}
}

// TestEventRecorderNeverBlocksAndCountsDrops holds the database's write lock so the
// writer cannot write, then records more events than the queue holds: Record stays
// fast, the overflow is counted, and everything not counted as dropped is written.
func TestEventRecorderNeverBlocksAndCountsDrops(t *testing.T) {
	app := testkit.NewApp(t)
	rec := proof.NewEventRecorder(app)
	release := make(chan struct{})
	holding := make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- app.RunInTransaction(func(tx core.App) error {
			if _, err := tx.DB().NewQuery(`UPDATE config SET updated = updated WHERE 0`).Execute(); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	total := proof.EventRecorderQueue + 500
	start := time.Now()
	for i := range total {
		rec.Record(viewEvent(i))
	}
	took := time.Since(start)
	if took > time.Second {
		t.Errorf("recording %d events took %v while the database was busy: Record must not wait", total, took)
	}
	if rec.Dropped() < 500-256 { // the writer holds at most one batch outside the queue
		t.Errorf("%d dropped; the queue holds %d, so at least %d should be", rec.Dropped(), proof.EventRecorderQueue, 500-256)
	}
	close(release)
	if err := <-txDone; err != nil {
		t.Fatal(err)
	}
	rec.Close()
	rows := testkit.Count(t, app, "proof_page_events", "", nil)
	if int64(rows) != rec.Written() || rec.Written()+rec.Dropped() != int64(total) {
		t.Errorf("%d rows, %d written, %d dropped, %d recorded: every event is either stored or counted", rows, rec.Written(), rec.Dropped(), total)
	}
}
