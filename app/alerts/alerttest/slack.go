// Package alerttest runs a local HTTP server standing in for Slack's incoming webhooks,
// for tests of the alert delivery: it records what it receives and can fail, time out,
// rate limit, refuse and recover on request.
package alerttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Answer is how the fake Slack answers the next requests.
type Answer int

// Answers.
const (
	OK          Answer = iota // 200 ok
	ServerError               // 500
	Slow                      // no answer for 30 s (longer than any client timeout in tests)
	RateLimited               // 429 with Retry-After
	NoService                 // 404 no_service: the webhook was removed
)

// Message is a request Slack accepted.
type Message struct {
	Hook   string // the name given to Hook
	Text   string
	Blocks []Block
	Raw    []byte
}

// Block is the part of a Block Kit block the tests look at.
type Block struct {
	Type     string `json:"type"`
	BlockID  string `json:"block_id"`
	Text     *Text  `json:"text"`
	Fields   []Text `json:"fields"`
	Elements []Text `json:"elements"`
}

// Text is a Block Kit text object.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Slack is the fake. Its zero answer is OK.
type Slack struct {
	srv        *httptest.Server
	stop       chan struct{}
	mu         sync.Mutex
	answer     Answer
	retryAfter string
	requests   int
	accepted   []Message
}

// NewSlack starts the fake on 127.0.0.1; it stops when the test ends.
func NewSlack(t testing.TB) *Slack {
	t.Helper()
	s := &Slack{stop: make(chan struct{}), retryAfter: "60"}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.stop)
		s.srv.Close()
	})
	return s
}

// Hook is the incoming-webhook URL of a channel named name. Its path holds a token,
// as Slack's do: Secret(name) must never show up in logs or records.
func (s *Slack) Hook(name string) string {
	return s.srv.URL + "/services/T0TEST/B" + strings.ToUpper(name) + "/" + Secret(name)
}

// Secret is the token in the path of Hook(name).
func Secret(name string) string { return "xoxsecret" + name + "Zq81" }

// Answer sets how the following requests are answered.
func (s *Slack) Answer(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

// RetryAfter sets the Retry-After header of RateLimited answers.
func (s *Slack) RetryAfter(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = v
}

// Requests is how many requests arrived, answered any way.
func (s *Slack) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Accepted returns the messages answered 200, in order; hook "" means all hooks.
func (s *Slack) Accepted(hook string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.accepted {
		if hook == "" || m.Hook == hook {
			out = append(out, m)
		}
	}
	return out
}

func (s *Slack) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests++
	answer, retryAfter := s.answer, s.retryAfter
	s.mu.Unlock()
	switch answer {
	case ServerError:
		http.Error(w, "internal_error", http.StatusInternalServerError)
		return
	case Slow:
		select {
		case <-time.After(30 * time.Second):
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	case RateLimited:
		w.Header().Set("Retry-After", retryAfter)
		http.Error(w, "rate_limited", http.StatusTooManyRequests)
		return
	case NoService:
		http.Error(w, "no_service", http.StatusNotFound)
		return
	}
	msg, problem := parse(raw)
	if problem != "" {
		http.Error(w, "invalid_payload: "+problem, http.StatusBadRequest)
		return
	}
	parts := strings.Split(r.URL.Path, "/") // /services/T0TEST/B<NAME>/<secret>
	if len(parts) == 5 && r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json" {
		msg.Hook = strings.ToLower(strings.TrimPrefix(parts[3], "B"))
	} else {
		http.Error(w, "no_service", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, msg)
	s.mu.Unlock()
	io.WriteString(w, "ok")
}

// parse checks a body the way Slack would refuse it: not JSON, no text, a header over
// 150 characters, an empty section, more than 10 fields in a section, more than 50 blocks.
func parse(raw []byte) (Message, string) {
	msg := Message{Raw: raw}
	var body struct {
		Text   string  `json:"text"`
		Blocks []Block `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return msg, "not JSON"
	}
	msg.Text, msg.Blocks = body.Text, body.Blocks
	if strings.TrimSpace(body.Text) == "" && len(body.Blocks) == 0 {
		return msg, "no text"
	}
	if len(body.Blocks) > 50 {
		return msg, "more than 50 blocks"
	}
	for i, b := range body.Blocks {
		switch {
		case b.Type == "header" && (b.Text == nil || b.Text.Type != "plain_text" || len([]rune(b.Text.Text)) > 150):
			return msg, fmt.Sprintf("block %d: header must be plain_text of at most 150 characters", i)
		case b.Type == "section" && (b.Text == nil || b.Text.Text == "") && len(b.Fields) == 0:
			return msg, fmt.Sprintf("block %d: empty section", i)
		case b.Type == "section" && (len(b.Fields) > 10 || (b.Text != nil && len([]rune(b.Text.Text)) > 3000)):
			return msg, fmt.Sprintf("block %d: section too long", i)
		case b.Type == "context" && (len(b.Elements) == 0 || len(b.Elements) > 10):
			return msg, fmt.Sprintf("block %d: context needs 1 to 10 elements", i)
		}
	}
	return msg, ""
}

// ContextLine is the text of a message's context block, elements joined by " | ".
func (m Message) ContextLine() string {
	for _, b := range m.Blocks {
		if b.Type == "context" {
			var parts []string
			for _, e := range b.Elements {
				parts = append(parts, e.Text)
			}
			return strings.Join(parts, " | ")
		}
	}
	return ""
}

// Header is the text of a message's header block.
func (m Message) Header() string {
	for _, b := range m.Blocks {
		if b.Type == "header" && b.Text != nil {
			return b.Text.Text
		}
	}
	return ""
}
