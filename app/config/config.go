// Package config reads opspine's OPSPINE_* environment variables into one typed value.
// Every variable is listed, with its default, in README.md.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config holds everything opspine reads from its environment.
type Config struct {
	// BrandName is shown on pages and emails.
	BrandName string
	// Timezone is the business time zone for dates people see.
	Timezone *time.Location

	// ShopifyShopDomain and ShopifyWebhookSecrets, when both set, create or update that shop at start.
	ShopifyShopDomain     string
	ShopifyWebhookSecrets []string
	ShopifyOrderPrefix    string
	// ShopifyAdminToken enables the reconciliation job against the Admin API.
	ShopifyAdminToken string
	// ShopifyAdminBaseURL overrides https://<shop domain> (tests, proxies).
	ShopifyAdminBaseURL string
	ShopifyAPIVersion   string

	// WebhookMaxBodyBytes refuses larger webhook bodies before reading them.
	WebhookMaxBodyBytes int64
	// WebhookRetrySchedule is the cron expression of the webhook-retry job.
	WebhookRetrySchedule string
	// WebhookMaxAttempts is how many processing attempts a delivery gets before it is dead.
	WebhookMaxAttempts int
	// WebhookRetryBase is the first backoff delay; each attempt doubles it, up to WebhookRetryMax.
	WebhookRetryBase time.Duration
	WebhookRetryMax  time.Duration

	// ReconcileSchedule is the cron expression of the shopify-reconcile job.
	ReconcileSchedule string
	// ReconcileLookback is how far back the first reconciliation looks.
	ReconcileLookback time.Duration

	// SMTP is where the email outbox sends.
	SMTP SMTP
	// EmailSendSchedule is the cron expression of the email-outbox-send job.
	EmailSendSchedule string
	// EmailMaxAttempts is how many temporary failures an email gets before it is dead.
	EmailMaxAttempts int

	// Slack incoming-webhook URLs per channel; an unset one falls back to SlackAlertsURL,
	// and with none set alerts are kept and shown, not lost.
	SlackUrgentURL string
	SlackAlertsURL string
	SlackDigestURL string
	// AlertDeliverSchedule is the cron expression of the alert-deliver job.
	AlertDeliverSchedule string
	// AlertMaxAttempts is how many failed deliveries an alert notification gets before it is dead.
	AlertMaxAttempts int

	// PublicURL is where customers reach opspine; proof URLs are PublicURL + /proof/<public id>.
	PublicURL string
	// BatchPrefix starts every batch code: <PREFIX>-YYMMDD-NNN.
	BatchPrefix string
	// PublicIDKey keys the hash that makes a batch's public id; empty: a random key kept
	// in the data directory (opspine_public_id.key) is made at first start.
	PublicIDKey string
	// CopackerEmail receives each new batch's label.
	CopackerEmail string
	// LabelWidthMM and LabelHeightMM are the pouch label size.
	LabelWidthMM  float64
	LabelHeightMM float64

	// LabIMAP is the mailbox lab reports arrive in; an empty Addr disables the
	// lab-email-poll job.
	LabIMAP LabIMAP
}

// LabIMAP is the mailbox the lab-email-poll job reads.
type LabIMAP struct {
	Addr     string // host:port
	Username string
	Password string
	// TLS is implicit TLS; OPSPINE_LAB_IMAP_TLS=off turns it off (local relays, tests).
	TLS              bool
	Mailbox          string
	ProcessedMailbox string
	// Interval is how often the mailbox is read.
	Interval time.Duration
}

// SMTP is the outgoing mail server.
type SMTP struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is none, starttls or tls (implicit TLS, usually port 465).
	TLS     string
	From    string
	Timeout time.Duration
}

// Load reads the environment through getenv (os.Getenv in production) and validates it.
func Load(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	r := reader{getenv: getenv}
	c := Config{
		BrandName:            r.str("OPSPINE_BRAND_NAME", "opspine"),
		ShopifyShopDomain:    strings.ToLower(r.str("OPSPINE_SHOPIFY_SHOP_DOMAIN", "")),
		ShopifyOrderPrefix:   r.str("OPSPINE_SHOPIFY_ORDER_PREFIX", ""),
		ShopifyAdminToken:    r.str("OPSPINE_SHOPIFY_ADMIN_TOKEN", ""),
		ShopifyAdminBaseURL:  strings.TrimRight(r.str("OPSPINE_SHOPIFY_ADMIN_BASE_URL", ""), "/"),
		ShopifyAPIVersion:    r.str("OPSPINE_SHOPIFY_API_VERSION", "2025-10"),
		WebhookMaxBodyBytes:  int64(r.integer("OPSPINE_WEBHOOK_MAX_BODY_BYTES", 2<<20)),
		WebhookRetrySchedule: r.str("OPSPINE_WEBHOOK_RETRY_SCHEDULE", "* * * * *"),
		WebhookMaxAttempts:   r.integer("OPSPINE_WEBHOOK_MAX_ATTEMPTS", 8),
		WebhookRetryBase:     r.duration("OPSPINE_WEBHOOK_RETRY_BASE", 30*time.Second),
		WebhookRetryMax:      r.duration("OPSPINE_WEBHOOK_RETRY_MAX", 6*time.Hour),
		ReconcileSchedule:    r.str("OPSPINE_SHOPIFY_RECONCILE_SCHEDULE", "*/15 * * * *"),
		ReconcileLookback:    r.duration("OPSPINE_SHOPIFY_RECONCILE_LOOKBACK", 72*time.Hour),
		SMTP: SMTP{
			Host:     r.str("OPSPINE_SMTP_HOST", ""),
			Port:     r.integer("OPSPINE_SMTP_PORT", 587),
			Username: r.str("OPSPINE_SMTP_USERNAME", ""),
			Password: r.str("OPSPINE_SMTP_PASSWORD", ""),
			TLS:      strings.ToLower(r.str("OPSPINE_SMTP_TLS", "starttls")),
			From:     r.str("OPSPINE_MAIL_FROM", ""),
			Timeout:  r.duration("OPSPINE_SMTP_TIMEOUT", 30*time.Second),
		},
		EmailSendSchedule:    r.str("OPSPINE_EMAIL_SEND_SCHEDULE", "* * * * *"),
		EmailMaxAttempts:     r.integer("OPSPINE_EMAIL_MAX_ATTEMPTS", 8),
		SlackUrgentURL:       r.str("OPSPINE_SLACK_URGENT_URL", ""),
		SlackAlertsURL:       r.str("OPSPINE_SLACK_ALERTS_URL", ""),
		SlackDigestURL:       r.str("OPSPINE_SLACK_DIGEST_URL", ""),
		AlertDeliverSchedule: r.str("OPSPINE_ALERT_DELIVER_SCHEDULE", "* * * * *"),
		AlertMaxAttempts:     r.integer("OPSPINE_ALERT_MAX_ATTEMPTS", 10),
		PublicURL:            strings.TrimRight(r.str("OPSPINE_PUBLIC_URL", "http://127.0.0.1:8090"), "/"),
		BatchPrefix:          strings.ToUpper(r.str("OPSPINE_BATCH_PREFIX", "B")),
		PublicIDKey:          r.str("OPSPINE_PUBLIC_ID_KEY", ""),
		CopackerEmail:        r.str("OPSPINE_COPACKER_EMAIL", ""),
	}
	c.LabIMAP = LabIMAP{
		Addr:             r.str("OPSPINE_LAB_IMAP_ADDR", ""),
		Username:         r.str("OPSPINE_LAB_IMAP_USERNAME", ""),
		Password:         r.str("OPSPINE_LAB_IMAP_PASSWORD", ""),
		TLS:              true,
		Mailbox:          r.str("OPSPINE_LAB_IMAP_MAILBOX", "INBOX"),
		ProcessedMailbox: r.str("OPSPINE_LAB_IMAP_PROCESSED_MAILBOX", ""),
		Interval:         r.duration("OPSPINE_LAB_IMAP_INTERVAL", 5*time.Minute),
	}
	switch tlsMode := strings.ToLower(r.str("OPSPINE_LAB_IMAP_TLS", "on")); tlsMode {
	case "on", "true", "1", "yes":
	case "off", "false", "0", "no":
		c.LabIMAP.TLS = false
	default:
		r.errs = append(r.errs, fmt.Sprintf("OPSPINE_LAB_IMAP_TLS=%q must be on or off", tlsMode))
	}
	if c.LabIMAP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.LabIMAP.Addr); err != nil {
			r.errs = append(r.errs, fmt.Sprintf("OPSPINE_LAB_IMAP_ADDR=%q must be host:port, e.g. imap.example.com:993", c.LabIMAP.Addr))
		}
		if c.LabIMAP.Username == "" {
			r.errs = append(r.errs, "OPSPINE_LAB_IMAP_USERNAME must be set when OPSPINE_LAB_IMAP_ADDR is")
		}
	}
	if c.LabIMAP.Interval < time.Minute {
		r.errs = append(r.errs, "OPSPINE_LAB_IMAP_INTERVAL must be at least 1m")
	}
	c.LabelWidthMM, c.LabelHeightMM = r.size("OPSPINE_LABEL_SIZE_MM", 62, 29)
	for _, s := range strings.Split(r.str("OPSPINE_SHOPIFY_WEBHOOK_SECRET", ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.ShopifyWebhookSecrets = append(c.ShopifyWebhookSecrets, s)
		}
	}
	tz := r.str("OPSPINE_TIMEZONE", "Europe/London")
	loc, err := time.LoadLocation(tz)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("OPSPINE_TIMEZONE=%q is not a known time zone", tz))
	}
	c.Timezone = loc
	if c.WebhookMaxAttempts < 1 {
		r.errs = append(r.errs, "OPSPINE_WEBHOOK_MAX_ATTEMPTS must be at least 1")
	}
	switch c.SMTP.TLS {
	case "none", "starttls", "tls":
	default:
		r.errs = append(r.errs, fmt.Sprintf("OPSPINE_SMTP_TLS=%q must be none, starttls or tls", c.SMTP.TLS))
	}
	if c.SMTP.Host != "" && c.SMTP.From == "" {
		r.errs = append(r.errs, "OPSPINE_MAIL_FROM must be set when OPSPINE_SMTP_HOST is")
	}
	if c.EmailMaxAttempts < 1 || c.AlertMaxAttempts < 1 {
		r.errs = append(r.errs, "OPSPINE_EMAIL_MAX_ATTEMPTS and OPSPINE_ALERT_MAX_ATTEMPTS must be at least 1")
	}
	if !regexp.MustCompile(`^[A-Z0-9]{1,8}$`).MatchString(c.BatchPrefix) {
		r.errs = append(r.errs, fmt.Sprintf("OPSPINE_BATCH_PREFIX=%q must be 1 to 8 letters or digits", c.BatchPrefix))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.errs = append(r.errs, fmt.Sprintf("OPSPINE_PUBLIC_URL=%q must be an http(s) URL such as https://proof.example.com", c.PublicURL))
	}
	if c.WebhookMaxBodyBytes < 1024 {
		r.errs = append(r.errs, "OPSPINE_WEBHOOK_MAX_BODY_BYTES must be at least 1024")
	}
	if (c.ShopifyShopDomain == "") != (len(c.ShopifyWebhookSecrets) == 0) {
		r.errs = append(r.errs, "OPSPINE_SHOPIFY_SHOP_DOMAIN and OPSPINE_SHOPIFY_WEBHOOK_SECRET must be set together")
	}
	if len(r.errs) > 0 {
		return c, fmt.Errorf("config: %s", strings.Join(r.errs, "; "))
	}
	return c, nil
}

type reader struct {
	getenv func(string) string
	errs   []string
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) integer(name string, def int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q is not a whole number", name, v))
		return def
	}
	return n
}

// size reads "WIDTHxHEIGHT" in millimetres, e.g. 62x29.
func (r *reader) size(name string, defW, defH float64) (float64, float64) {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return defW, defH
	}
	ws, hs, ok := strings.Cut(strings.ToLower(v), "x")
	w, errW := strconv.ParseFloat(strings.TrimSpace(ws), 64)
	h, errH := strconv.ParseFloat(strings.TrimSpace(hs), 64)
	if !ok || errW != nil || errH != nil || w < 20 || h < 15 || w > 300 || h > 300 {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q must be WIDTHxHEIGHT in mm between 20x15 and 300x300, e.g. 62x29", name, v))
		return defW, defH
	}
	return w, h
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q is not a positive duration like 30s or 5m", name, v))
		return def
	}
	return d
}
