package benchmark

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// measureProofPages requests GET /proof/{public_id} from the child at base, cycling
// through ids in a scattered order, open loop at rate requests per second for d: each
// request leaves at its scheduled time whatever the earlier ones are doing, and is
// timed from that time, so a stall counts against every request that should have left
// meanwhile. Fifty requests first warm the connections, the template and SQLite's
// page cache. Every request must be answered 200 with the page.
func measureProofPages(ctx context.Context, base string, ids []string, rate int, d time.Duration) (Answers, error) {
	if len(ids) == 0 {
		return Answers{}, errors.New("bench: proof page: no released batch to request")
	}
	client := newClient(64)
	getEach := request(func(ctx context.Context, i int) (int, string, error) {
		status, err := get(ctx, client, base+"/proof/"+ids[(i*7919)%len(ids)], proofMinBytes)
		return status, "", err
	})
	if warm := sendClosed(ctx, 50, 4, getEach).summary(); warm.OK != warm.Sent {
		return warm, fmt.Errorf("bench: proof page warm-up: %d of %d answered 200 (last error: %s)", warm.OK, warm.Sent, warm.LastError)
	}
	a := sendOpen(ctx, max(int(d.Seconds()*float64(rate)), 1), rate, getEach).summary()
	if a.OK != a.Sent {
		return a, fmt.Errorf("bench: proof page: %d of %d answered 200 (last error: %s)", a.OK, a.Sent, a.LastError)
	}
	return a, nil
}
