// Package alerts owns the alerts the monitoring checks raise and the Slack messages
// about them. Raise and Resolve only write rows (alerts, alert_notifications); the
// alert-deliver job sends the queued messages with a Sender, with retries and backoff,
// so a check never waits on Slack and a message is never lost while Slack is down or
// not configured.
//
// No storms: while an alert is open, raising it again updates the row and queues
// nothing until the cooldown (the alert_cooldown_minutes setting) has passed; a higher
// severity notifies at once; resolving it queues one "resolved" message.
package alerts

import (
	"time"

	"github.com/opspine/opspine/app/settings"
)

// Severity is how bad an alert is; it picks the Slack channel.
type Severity string

// Severities, from least to most severe.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// rank orders severities; 0 is unknown.
func (s Severity) rank() int {
	switch s {
	case Info:
		return 1
	case Warning:
		return 2
	case Critical:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the three severities.
func (s Severity) Valid() bool { return s.rank() > 0 }

// Field is one labelled figure shown with an alert ("Oldest pending", "14 min").
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Alert is what a check raises. DedupeKey identifies the condition: raising the same
// key again while it is open updates that alert instead of opening another.
type Alert struct {
	Severity    Severity
	Title, Body string
	Fields      []Field
	SourceCheck string
	DedupeKey   string
}

// OpenAlert is an open alert as the health endpoint and the daily snapshot list it.
type OpenAlert struct {
	ID          string    `json:"id"`
	Severity    Severity  `json:"severity"`
	Title       string    `json:"title"`
	SourceCheck string    `json:"source_check"`
	DedupeKey   string    `json:"dedupe_key"`
	OpenedAt    time.Time `json:"opened_at"`
	LastSeenAt  time.Time `json:"last_seen_at"`
	Occurrences int       `json:"occurrences"`
}

// Alert states.
const (
	StateOpen     = "open"
	StateResolved = "resolved"
)

// Kinds of notification.
const (
	KindFiring    = "firing"
	KindReminder  = "reminder"
	KindEscalated = "escalated"
	KindResolved  = "resolved"
	KindDigest    = "digest"
)

// Notification states.
const (
	NotificationPending = "pending"
	NotificationSending = "sending"
	NotificationSent    = "sent"
	NotificationFailed  = "failed"
	NotificationDead    = "dead"
)

// Channels a notification goes to; Sender maps each to a configured Slack URL.
const (
	ChannelUrgent = "urgent"
	ChannelAlerts = "alerts"
	ChannelDigest = "digest"
)

// channelFor routes a severity: critical to urgent, warning to alerts, info to the digest.
func channelFor(s Severity) string {
	switch s {
	case Critical:
		return ChannelUrgent
	case Warning:
		return ChannelAlerts
	}
	return ChannelDigest
}

// Cooldown is how long an open alert stays quiet after a message about it before a
// reminder may follow.
var Cooldown = settings.Register(settings.Setting{
	Key: "alert_cooldown_minutes", Default: 60, Unit: "minutes",
	Description: "An open alert raised again within this many minutes of its last Slack message is updated, not sent again (a higher severity is sent at once). Default 60.",
})
