package settings_test

import (
	"testing"
	"time"

	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/testkit"
)

var testSetting = settings.Register(settings.Setting{Key: "test_threshold_minutes", Default: 15, Unit: "minutes", Description: "for the test"})

func TestValueComesFromConfigElseTheDefault(t *testing.T) {
	app := testkit.NewApp(t)
	if got := testSetting.Minutes(app.DB()); got != 15*time.Minute {
		t.Fatalf("default: %s", got)
	}
	for range 2 { // seeding twice changes nothing
		if err := settings.SeedMissing(app.DB(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := testkit.Count(t, app, "config", "key = 'test_threshold_minutes' AND value = 15 AND unit = 'minutes'", nil); n != 1 {
		t.Fatalf("%d seeded rows, want 1", n)
	}
	rec, err := app.FindFirstRecordByData("config", "key", "test_threshold_minutes")
	if err != nil {
		t.Fatal(err)
	}
	rec.Set("value", 2.5)
	if err := app.Save(rec); err != nil {
		t.Fatal(err)
	}
	if err := settings.SeedMissing(app.DB(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := testSetting.Minutes(app.DB()); got != 150*time.Second {
		t.Fatalf("configured: %s", got)
	}
}
