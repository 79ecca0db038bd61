package outbox

import (
	"time"

	"github.com/opspine/opspine/app/retry"
)

// DefaultBackoff retries after 30 s to 1 min, then doubling up to an hour: eight
// attempts span about two hours, long enough for a greylisting server or a short
// outage, short enough that a person hears of a real problem the same morning.
var DefaultBackoff = retry.Backoff{Base: time.Minute, Max: time.Hour}
