package hooks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/config"
)

// TestLabIMAPConfig: the OPSPINE_LAB_IMAP_* defaults, and refusals that name the variable.
func TestLabIMAPConfig(t *testing.T) {
	load := func(env map[string]string) (config.Config, error) {
		return config.Load(func(k string) string { return env[k] })
	}
	c, err := load(map[string]string{"OPSPINE_LAB_IMAP_ADDR": "imap.example.com:993", "OPSPINE_LAB_IMAP_USERNAME": "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if l := c.LabIMAP; !l.TLS || l.Mailbox != "INBOX" || l.ProcessedMailbox != "" || l.Interval != 5*time.Minute {
		t.Errorf("defaults: %+v", l)
	}
	for name, env := range map[string]map[string]string{
		"OPSPINE_LAB_IMAP_TLS":      {"OPSPINE_LAB_IMAP_TLS": "maybe"},
		"OPSPINE_LAB_IMAP_ADDR":     {"OPSPINE_LAB_IMAP_ADDR": "imap.example.com", "OPSPINE_LAB_IMAP_USERNAME": "lab"},
		"OPSPINE_LAB_IMAP_USERNAME": {"OPSPINE_LAB_IMAP_ADDR": "imap.example.com:993"},
		"OPSPINE_LAB_IMAP_INTERVAL": {"OPSPINE_LAB_IMAP_INTERVAL": "30s"},
	} {
		if _, err := load(env); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", env, err, name)
		}
	}
}
