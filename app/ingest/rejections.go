package ingest

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// Reasons a delivery is refused with 401.
const (
	RejectUnknownShop  = "unknown_shop"
	RejectBadSignature = "bad_signature"
)

// CountRejection counts a refused delivery in one ops_events row per reason, shop and
// hour (meta.count), so a flood of forged requests cannot fill the database: requests
// naming unknown shops share one row, whatever domain they claim.
func CountRejection(db dbx.Builder, now time.Time, reason, shopDomain string, known bool) error {
	bucket := shopDomain
	if !known {
		bucket = "unknown"
	}
	entityID := fmt.Sprintf("%s:%s:%s", reason, bucket, now.UTC().Format("2006-01-02T15"))
	claimed := printable(shopDomain, 100)
	res, err := db.NewQuery(`UPDATE ops_events SET
		meta = json_set(meta, '$.count', json_extract(meta, '$.count') + 1, '$.last_at', {:now}, '$.last_domain', {:claimed}),
		updated = {:now}
		WHERE entity_type = 'webhook' AND entity_id = {:eid} AND kind = 'webhook.rejected'`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(now), "claimed": claimed, "eid": entityID}).Execute()
	if err != nil {
		return fmt.Errorf("count rejected delivery: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	return opsevents.Record(db, now, opsevents.Event{
		EntityType: "webhook", EntityID: entityID, Kind: "webhook.rejected", Actor: "anonymous",
		Message: fmt.Sprintf("Refused webhook deliveries (%s) claiming shop %s; meta.count says how many this hour", strings.ReplaceAll(reason, "_", " "), bucket),
		Meta:    map[string]any{"reason": reason, "count": 1, "first_at": sqlstore.FormatTime(now), "last_at": sqlstore.FormatTime(now), "last_domain": claimed},
	})
}

// printable keeps at most n printable characters of an untrusted header value.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}
