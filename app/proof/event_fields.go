package proof

import (
	"net/url"
	"strings"
)

// Event kinds of proof_page_events.
const (
	EventView           = "view"
	EventJSON           = "json"
	EventReportDownload = "report_download"
	EventNotFound       = "not_found"
)

// Device types of proof_page_events. Crawlers and scripts count as bots so they do not
// inflate the views of people.
const (
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceDesktop = "desktop"
	DeviceBot     = "bot"
)

// DeviceTypeOf classifies a User-Agent header. Only the class is kept, never the header.
func DeviceTypeOf(userAgent string) string {
	ua := strings.ToLower(userAgent)
	switch {
	case ua == "" || containsAny(ua, "bot", "crawler", "spider", "slurp", "preview", "curl/", "wget/", "python-", "go-http-client", "headlesschrome"):
		return DeviceBot
	case containsAny(ua, "ipad", "tablet", "kindle", "silk/", "playbook") ||
		(strings.Contains(ua, "android") && !strings.Contains(ua, "mobile")):
		return DeviceTablet
	case containsAny(ua, "mobi", "iphone", "ipod", "android", "windows phone"):
		return DeviceMobile
	}
	return DeviceDesktop
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// ReferrerHostOf keeps only the host of a Referer header (lowercase, no port, no path,
// no query): where a scan came from, never what the visitor was reading.
func ReferrerHostOf(referer string) string {
	if referer == "" {
		return ""
	}
	u, err := url.Parse(referer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if len(host) > 253 {
		return ""
	}
	return host
}
