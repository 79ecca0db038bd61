package retry

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		b := Backoff{Base: 30 * time.Second, Max: 10 * time.Minute, Rand: func() float64 { return r }}
		for attempt, full := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 6: 10 * time.Minute, 50: 10 * time.Minute} {
			d := b.Delay(attempt)
			if d < full/2 || d > full {
				t.Errorf("attempt %d (rand %v): %s, want between %s and %s", attempt, r, d, full/2, full)
			}
		}
	}
}
