package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
)

// runsTable counts monitoring_runs rows.
type runsTable struct {
	t  *testing.T
	db interface{ DB() dbx.Builder }
}

func (r *runsTable) count(where string) int {
	r.t.Helper()
	var n int
	if err := r.db.DB().NewQuery("SELECT COUNT(*) FROM monitoring_runs WHERE " + where).Row(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(s, part string) bool { return strings.Contains(s, part) }
