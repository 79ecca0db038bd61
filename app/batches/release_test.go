package batches_test

import (
	"strings"
	"testing"

	"github.com/opspine/opspine/app/batches"
)

func TestReleaseRuleDecidesPassFailOrIncomplete(t *testing.T) {
	eu := batches.Limits{EnterobacteriaceaeMaxCFU: 300}
	withListeria := batches.Limits{EnterobacteriaceaeMaxCFU: 300, RequireListeria: true}
	no, yes := false, true
	cases := []struct {
		name    string
		f       batches.Findings
		l       batches.Limits
		outcome string
		reason  string
	}{
		{"all within limits", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 300}, eu, "pass", "Enterobacteriaceae 300 cfu/g (limit 300 cfu/g)"},
		{"zero count is a result", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true}, eu, "pass", "Enterobacteriaceae 0 cfu/g"},
		{"one above the limit", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 301}, eu, "fail", "301 cfu/g is above the limit of 300"},
		{"salmonella detected", batches.Findings{Salmonella: "detected", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 1}, eu, "fail", "Salmonella detected"},
		{"a failure with tests missing still fails", batches.Findings{Salmonella: "detected"}, eu, "fail", "Salmonella detected"},
		{"no enterobacteriaceae", batches.Findings{Salmonella: "absent"}, eu, "", "Enterobacteriaceae not tested"},
		{"nothing tested", batches.Findings{}, eu, "", "Salmonella, Enterobacteriaceae not tested"},
		{"listeria optional by default", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true}, eu, "pass", "Pass:"},
		{"listeria required and missing", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true}, withListeria, "", "Listeria (required by lab_require_listeria) not tested"},
		{"listeria required and absent", batches.Findings{Salmonella: "absent", Listeria: "absent", EnterobacteriaceaeTested: true}, withListeria, "pass", "Listeria absent"},
		{"listeria detected though optional", batches.Findings{Salmonella: "absent", Listeria: "detected", EnterobacteriaceaeTested: true}, eu, "fail", "Listeria monocytogenes detected"},
		{"other test failed", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true,
			OtherTests: []batches.OtherTest{{Name: "Clostridium", Result: 900.0, Limit: 100.0, Pass: &no}}}, eu, "fail", "Clostridium failed (result 900, limit 100)"},
		{"other tests passed or informational", batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true,
			OtherTests: []batches.OtherTest{{Name: "E. coli", Pass: &yes}, {Name: "Moisture", Result: "72%"}}}, eu, "pass", "Pass:"},
	}
	for _, c := range cases {
		v := batches.EvaluateLabFindings(c.f, c.l)
		if v.Outcome != c.outcome || !strings.Contains(v.Reason, c.reason) {
			t.Errorf("%s: %q %q, want %q containing %q", c.name, v.Outcome, v.Reason, c.outcome, c.reason)
		}
	}
}

func TestReleaseSettingsDefaultToTheRegulation(t *testing.T) {
	if batches.EnterobacteriaceaeMaxCFU.Default != 300 || batches.RequireListeria.Default != 0 {
		t.Errorf("defaults %v %v", batches.EnterobacteriaceaeMaxCFU.Default, batches.RequireListeria.Default)
	}
	for _, s := range []string{batches.EnterobacteriaceaeMaxCFU.Description, batches.RequireListeria.Description} {
		if !strings.Contains(s, "142/2011 Annex XIII") {
			t.Errorf("description does not cite the regulation: %q", s)
		}
	}
}
