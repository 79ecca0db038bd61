package hooks

import (
	"fmt"
	"slices"

	"github.com/pocketbase/pocketbase/core"
)

// openingRateLimits are the rules opspine turns on when the admin has not configured
// PocketBase's limiter (Settings > Rate limits). PocketBase keys each rule on the
// client IP and answers 429 once a client has used up a rule's requests in its window.
//
// The specific rules come before PocketBase's own "/api/" catch-all because PocketBase
// uses the first prefix rule that matches.
//
//   - *:auth (sign-in with password, OAuth2 or OTP on any auth collection): PocketBase's
//     own default, 2 per 3 s per client, enough for a person and slow for a guesser.
//   - /api/webhooks/shopify: generous, 1000 per second per client (PocketBase counts in
//     fixed windows, so 300 already refused some of a steady 200/s). Shopify delivers from
//     a few IPs and bursts after an outage or a bulk edit, and a 429 there only makes it
//     retry later; the rule is a fuse against a flood from one address, not a throttle.
//   - /proof/ and /api/proof/ (public pages behind a QR code): 60 per 10 s per client,
//     plenty for a person, a brake on scraping public ids.
func openingRateLimits() []core.RateLimitRule {
	own := []core.RateLimitRule{
		{Label: "/api/webhooks/shopify", MaxRequests: 1000, Duration: 1},
		{Label: "/proof/", MaxRequests: 60, Duration: 10},
		{Label: "/api/proof/", MaxRequests: 60, Duration: 10},
	}
	return append(own, pocketBaseSampleRateLimits()...)
}

// pocketBaseSampleRateLimits are the rules a fresh PocketBase v0.39 install carries
// (disabled) in its settings: its own defaults, *:auth 2 per 3 s among them.
func pocketBaseSampleRateLimits() []core.RateLimitRule {
	return []core.RateLimitRule{
		{Label: "*:auth", MaxRequests: 2, Duration: 3},
		{Label: "*:create", MaxRequests: 20, Duration: 5},
		{Label: "/api/batch", MaxRequests: 3, Duration: 1},
		{Label: "/api/", MaxRequests: 300, Duration: 10},
	}
}

// enableDefaultRateLimits turns PocketBase's rate limiter on with openingRateLimits when
// it is still as PocketBase installed it (off, with PocketBase's sample rules). Rules
// an admin has configured, or a limiter an admin has turned on, are left as they are.
func enableDefaultRateLimits(app core.App) error {
	settings := app.Settings()
	if settings.RateLimits.Enabled || !slices.Equal(settings.RateLimits.Rules, pocketBaseSampleRateLimits()) {
		return nil
	}
	settings.RateLimits.Enabled = true
	settings.RateLimits.Rules = openingRateLimits()
	if err := app.Save(settings); err != nil {
		return fmt.Errorf("enable default rate limits: %w", err)
	}
	return nil
}
