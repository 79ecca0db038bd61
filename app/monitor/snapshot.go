package monitor

import (
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

// Snapshot is the morning digest: yesterday (in the business time zone) and now.
type Snapshot struct {
	Day        string             `json:"day"`
	Orders     int64              `json:"orders"`
	Revenue    map[string]int64   `json:"revenue_minor"` // by currency, cancelled orders excluded, refunds deducted
	Failures   int64              `json:"failed_deliveries"`
	DeadLetter int64              `json:"dead_letters"`
	Queues     map[string]int64   `json:"queues"`
	Open       []alerts.OpenAlert `json:"open_alerts"`
}

// DailySnapshot measures yesterday's business day in loc.
func DailySnapshot(db dbx.Builder, now time.Time, loc *time.Location) (Snapshot, error) {
	local := now.In(loc)
	end := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	start := end.AddDate(0, 0, -1)
	span := dbx.Params{"start": sqlstore.FormatTime(start), "end": sqlstore.FormatTime(end)}
	s := Snapshot{Day: start.Format("Monday 2 January 2006"), Revenue: map[string]int64{}, Queues: map[string]int64{}}

	if err := db.NewQuery(`SELECT COUNT(*) FROM orders WHERE shopify_created_at >= {:start} AND shopify_created_at < {:end}`).
		Bind(span).Row(&s.Orders); err != nil {
		return s, fmt.Errorf("snapshot orders: %w", err)
	}
	var revenue []struct {
		Currency string `db:"currency"`
		Minor    int64  `db:"minor"`
	}
	if err := db.NewQuery(`SELECT currency, SUM(total_minor - refunded_minor) AS minor FROM orders
		WHERE shopify_created_at >= {:start} AND shopify_created_at < {:end} AND status != 'cancelled' GROUP BY currency`).
		Bind(span).All(&revenue); err != nil {
		return s, fmt.Errorf("snapshot revenue: %w", err)
	}
	for _, r := range revenue {
		s.Revenue[r.Currency] = r.Minor
	}
	if err := db.NewQuery(`SELECT COUNT(*) FROM webhook_inbox WHERE status IN ('failed', 'dead') AND received_at >= {:start} AND received_at < {:end}`).
		Bind(span).Row(&s.Failures); err != nil {
		return s, fmt.Errorf("snapshot failures: %w", err)
	}
	if err := db.NewQuery(`SELECT COUNT(*) FROM dead_letters WHERE created >= {:start} AND created < {:end}`).
		Bind(span).Row(&s.DeadLetter); err != nil {
		return s, fmt.Errorf("snapshot dead letters: %w", err)
	}
	for name, q := range map[string]string{
		"deliveries_pending": `SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'`,
		"deliveries_failed":  `SELECT COUNT(*) FROM webhook_inbox WHERE status = 'failed'`,
		"emails_waiting":     `SELECT COUNT(*) FROM email_outbox WHERE state IN ('pending', 'failed', 'sending')`,
		"alerts_waiting":     `SELECT COUNT(*) FROM alert_notifications WHERE state IN ('pending', 'failed')`,
	} {
		var n int64
		if err := db.NewQuery(q).Row(&n); err != nil {
			return s, fmt.Errorf("snapshot %s: %w", name, err)
		}
		s.Queues[name] = n
	}
	open, err := alerts.OpenAlerts(db)
	if err != nil {
		return s, fmt.Errorf("snapshot open alerts: %w", err)
	}
	s.Open = open
	return s, nil
}

// Fields renders the snapshot for the digest message.
func (s Snapshot) Fields() []alerts.Field {
	var revenue []string
	for cur, minor := range s.Revenue {
		revenue = append(revenue, FormatMoney(minor, cur))
	}
	if len(revenue) == 0 {
		revenue = []string{"none"}
	}
	open := "none"
	if len(s.Open) > 0 {
		var titles []string
		for _, a := range s.Open {
			titles = append(titles, fmt.Sprintf("%s: %s", a.Severity, a.Title))
		}
		open = strings.Join(titles, "\n")
	}
	return []alerts.Field{
		{Label: "Orders", Value: fmt.Sprint(s.Orders)},
		{Label: "Revenue", Value: strings.Join(revenue, ", ")},
		{Label: "Failed deliveries", Value: fmt.Sprintf("%d (%d dead letters)", s.Failures, s.DeadLetter)},
		{Label: "Queues now", Value: fmt.Sprintf("%d pending, %d for retry, %d emails, %d alert messages",
			s.Queues["deliveries_pending"], s.Queues["deliveries_failed"], s.Queues["emails_waiting"], s.Queues["alerts_waiting"])},
		{Label: "Open alerts", Value: open},
	}
}

// FormatMoney renders minor units with the currency's decimals: 123456 GBP → "GBP 1234.56".
func FormatMoney(minor int64, currency string) string {
	exp := shopify.CurrencyExponent(currency)
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	if exp == 0 {
		return fmt.Sprintf("%s %s%d", currency, sign, minor)
	}
	div := int64(1)
	for range exp {
		div *= 10
	}
	return fmt.Sprintf("%s %s%d.%0*d", currency, sign, minor/div, exp, minor%div)
}
