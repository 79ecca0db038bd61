// Package settings reads the thresholds and limits staff tune in the `config`
// collection (editable in the admin UI). Each has a default here, taken from the
// reference documents; a missing or unreadable row falls back to it, so a check
// never stops because of configuration.
package settings

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

func newID() string { return core.GenerateDefaultRandomId() }

// Setting is one tunable number.
type Setting struct {
	Key         string
	Default     float64
	Unit        string
	Description string
}

var (
	mu       sync.RWMutex
	registry = map[string]Setting{}
)

// Register declares a setting and its default; features call it from init. The
// migration that seeds `config` and the admin UI list come from this registry.
func Register(s Setting) Setting {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[s.Key]; dup {
		panic(fmt.Sprintf("settings: %s registered twice", s.Key))
	}
	registry[s.Key] = s
	return s
}

// All returns every registered setting, by key.
func All() []Setting {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Setting, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Value returns the setting's value from `config`, or its default.
func (s Setting) Value(db dbx.Builder) float64 {
	var v float64
	err := db.NewQuery(`SELECT value FROM config WHERE key = {:key}`).Bind(dbx.Params{"key": s.Key}).Row(&v)
	if err != nil {
		return s.Default
	}
	return v
}

// Minutes reads the setting as a number of minutes.
func (s Setting) Minutes(db dbx.Builder) time.Duration {
	return time.Duration(s.Value(db) * float64(time.Minute))
}

// Int reads the setting as a whole number.
func (s Setting) Int(db dbx.Builder) int64 { return int64(s.Value(db)) }

// SeedMissing writes every registered setting that `config` does not have yet, with its
// default, so staff see and can tune all of them in the admin UI. Existing values are
// never touched. opspine calls it at every start.
func SeedMissing(db dbx.Builder, now time.Time) error {
	for _, s := range All() {
		ts := now.UTC().Format("2006-01-02 15:04:05.000Z")
		_, err := db.NewQuery(`INSERT INTO config (id, key, value, unit, description, created, updated)
			VALUES ({:id}, {:key}, {:value}, {:unit}, {:description}, {:ts}, {:ts}) ON CONFLICT (key) DO NOTHING`).
			Bind(dbx.Params{"id": newID(), "key": s.Key, "value": s.Default, "unit": s.Unit, "description": s.Description, "ts": ts}).Execute()
		if err != nil {
			return fmt.Errorf("seed setting %s: %w", s.Key, err)
		}
	}
	return nil
}
