// Package retry spaces the attempts of everything opspine retries: webhook deliveries,
// emails, Slack messages.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces the retries of a failed attempt: base doubled per attempt, capped at
// max, with "full jitter" (a random delay between half and all of it) so that many
// failures at once do not retry in lockstep.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Rand returns a float in [0,1); nil uses math/rand.
	Rand func() float64
}

// Delay is the wait before the next attempt after `attempts` failed ones (1-based).
func (b Backoff) Delay(attempts int) time.Duration {
	d := b.Base
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}
