package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Slack's limits (Block Kit): header text 150 characters, section text 3000, a field
// 2000, ten fields a section. Longer text is cut with an ellipsis, never rejected.
const (
	maxHeader       = 150
	maxSectionText  = 3000
	maxFieldText    = 2000
	maxFieldLabel   = 200
	fieldsPerBlock  = 10
	maxFields       = 40
	contextBlockID  = "context"
	maxFallbackText = 3000
)

// message is what a notification says, before it becomes a Slack body.
type message struct {
	Kind        string
	Severity    Severity
	Title       string
	Body        string
	Fields      []Field
	Source      string
	OpenedAt    time.Time
	ResolvedAt  time.Time
	Occurrences int
}

// slackBody is a Slack incoming-webhook request: fallback text plus Block Kit blocks.
type slackBody struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	BlockID  string      `json:"block_id,omitempty"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

var severityLook = map[Severity]struct{ emoji, label string }{
	Critical: {":red_circle:", "Critical"},
	Warning:  {":warning:", "Warning"},
	Info:     {":information_source:", "Info"},
}

// headline is the message's first line: emoji, what happened, the title.
func (m message) headline() string {
	look := severityLook[m.Severity]
	switch m.Kind {
	case KindReminder:
		return fmt.Sprintf("%s Still open (%s): %s", look.emoji, strings.ToLower(look.label), m.Title)
	case KindEscalated:
		return fmt.Sprintf("%s Escalated to %s: %s", look.emoji, strings.ToLower(look.label), m.Title)
	case KindResolved:
		return ":white_check_mark: Resolved: " + m.Title
	case KindDigest:
		return ":clipboard: " + m.Title
	}
	return fmt.Sprintf("%s %s: %s", look.emoji, look.label, m.Title)
}

// slackBody renders m as the JSON Slack's incoming webhooks take. The context block
// says where the alert came from; Sender adds the brand name to it when it sends.
func (m message) slackBody() ([]byte, error) {
	head := m.headline()
	body := slackBody{Text: escape(truncate(head, maxFallbackText))}
	body.Blocks = append(body.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(head, maxHeader), Emoji: true}})
	text := m.Body
	if m.Kind == KindResolved {
		text = m.resolvedText()
	}
	if strings.TrimSpace(text) != "" {
		body.Blocks = append(body.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: escapeCut(text, maxSectionText)}})
	}
	fields := m.Fields
	if len(fields) > maxFields {
		fields = fields[:maxFields]
	}
	for len(fields) > 0 {
		n := min(len(fields), fieldsPerBlock)
		block := slackBlock{Type: "section"}
		for _, f := range fields[:n] {
			block.Fields = append(block.Fields, slackText{Type: "mrkdwn", Text: fieldText(f)})
		}
		body.Blocks = append(body.Blocks, block)
		fields = fields[n:]
	}
	body.Blocks = append(body.Blocks, slackBlock{Type: "context", BlockID: contextBlockID,
		Elements: []slackText{{Type: "mrkdwn", Text: m.contextLine()}}})
	out, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("render slack message: %w", err)
	}
	return out, nil
}

// fieldText is a field as Slack shows it: the label in bold over the value.
func fieldText(f Field) string {
	value := escapeCut(f.Value, maxFieldText-maxFieldLabel-3)
	if strings.TrimSpace(value) == "" {
		value = "–"
	}
	if strings.TrimSpace(f.Label) == "" {
		return value
	}
	return "*" + escapeCut(f.Label, maxFieldLabel) + "*\n" + value
}

func (m message) resolvedText() string {
	if m.OpenedAt.IsZero() || m.ResolvedAt.IsZero() {
		return "The condition has cleared."
	}
	return fmt.Sprintf("The condition has cleared after %s (raised %s).",
		humanDuration(m.ResolvedAt.Sub(m.OpenedAt)), times(m.Occurrences))
}

// humanDuration says how long in the units a person would use: "4 min", "2 h 05 min", "3 days 4 h".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days %d h", int(d.Hours())/24, int(d.Hours())%24)
}

// contextLine names the source check and, for alerts, how often and since when it was
// raised; Slack shows the <!date> token in each reader's own time zone.
func (m message) contextLine() string {
	if m.Kind == KindDigest {
		return "Daily digest"
	}
	parts := []string{}
	if m.Source != "" {
		parts = append(parts, "Check: `"+escape(m.Source)+"`")
	}
	if !m.OpenedAt.IsZero() && m.Kind != KindFiring {
		parts = append(parts, fmt.Sprintf("open since <!date^%d^{date_short_pretty} {time}|%s>",
			m.OpenedAt.Unix(), m.OpenedAt.UTC().Format("2006-01-02 15:04 UTC")))
	}
	if m.Occurrences > 1 && m.Kind != KindResolved {
		parts = append(parts, "raised "+times(m.Occurrences))
	}
	if len(parts) == 0 {
		return "opspine alert"
	}
	return strings.Join(parts, " · ")
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// withBrand returns payload with the brand name as the last element of its context
// line, replacing one added before, so that stamping again before a retry changes nothing.
func withBrand(payload []byte, brand string) ([]byte, error) {
	var body slackBody
	if err := json.Unmarshal(payload, &body); err != nil {
		return nil, fmt.Errorf("read stored slack message: %w", err)
	}
	if brand == "" {
		return payload, nil
	}
	stamp := slackText{Type: "mrkdwn", Text: "*" + escape(brand) + "*"}
	found := false
	for i, b := range body.Blocks {
		if b.BlockID == contextBlockID && len(b.Elements) > 0 {
			body.Blocks[i].Elements = append(b.Elements[:1:1], stamp)
			found = true
		}
	}
	if !found {
		body.Blocks = append(body.Blocks, slackBlock{Type: "context", BlockID: contextBlockID, Elements: []slackText{stamp}})
	}
	return json.Marshal(body)
}

// escape makes text safe for Slack mrkdwn: &, < and > are its control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// escapeCut escapes s and cuts the result to n characters without splitting an entity.
func escapeCut(s string, n int) string {
	e := escape(s)
	if utf8.RuneCountInString(e) <= n {
		return e
	}
	cut := string([]rune(e)[:n-1])
	if amp := strings.LastIndexByte(cut, '&'); amp >= 0 && !strings.Contains(cut[amp:], ";") {
		cut = cut[:amp]
	}
	return cut + "…"
}

// truncate cuts s to at most n characters (runes), ending with an ellipsis when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
