package hooks_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/hooks"
)

const wrongSignIn = `{"identity":"nobody@example.com","password":"not the password"}`

// A fresh install serves with PocketBase's limiter on: a flood of sign-in attempts from
// one client gets 429 while a person's couple of tries get the usual answer.
func TestRateLimitsOnByDefaultForSignIn(t *testing.T) {
	s := start(t, nil)
	rl := s.App.Settings().RateLimits
	if !rl.Enabled {
		t.Fatal("rate limits are off after serve")
	}
	if rule, ok := rl.FindRateLimitRule([]string{"staff:auth", "*:auth"}); !ok || rule.Label != "*:auth" {
		t.Fatalf("no *:auth rule: %+v", rl.Rules)
	}

	// normal: two tries (PocketBase's default allows 2 per 3 s) are answered, not throttled
	for i := 0; i < 2; i++ {
		if code, body := s.Call(t, "POST", "/api/collections/staff/auth-with-password", "", wrongSignIn); code != http.StatusBadRequest {
			t.Fatalf("try %d: %d %s, want 400", i+1, code, body)
		}
	}
	// flood: more attempts from the same address are refused
	limited := 0
	for i := 0; i < 10; i++ {
		code, _ := s.Call(t, "POST", "/api/collections/staff/auth-with-password", "", wrongSignIn)
		if code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("10 more sign-in attempts in a row were all answered; want 429s")
	}
	// superusers' sign-in is an auth collection too
	code, _ := s.Call(t, "POST", "/api/collections/_superusers/auth-with-password", "", wrongSignIn)
	code2, _ := s.Call(t, "POST", "/api/collections/_superusers/auth-with-password", "", wrongSignIn)
	code3, _ := s.Call(t, "POST", "/api/collections/_superusers/auth-with-password", "", wrongSignIn)
	if code3 != http.StatusTooManyRequests && code2 != http.StatusTooManyRequests {
		t.Errorf("superuser sign-in flood: %d %d %d, want a 429", code, code2, code3)
	}
}

// The Shopify receiver passes a normal burst and refuses a flood from one address with 429.
func TestRateLimitsWebhookBurstPassesFloodRefused(t *testing.T) {
	s := start(t, nil)
	// a normal burst: 100 signed deliveries, well under 1000 per second
	for i := 0; i < 100; i++ {
		d := testkit.Delivery{Topic: "orders/create", Body: testkit.Order(testkit.WithOrderID(int64(7000 + i))).JSON()}
		if code := s.Deliver(t, d); code != http.StatusOK {
			t.Fatalf("delivery %d of a normal burst: %d, want 200", i+1, code)
		}
	}
	s.WaitSettled(t)

	// the default rule is there; for the flood it is lowered to 50 a second, since a test
	// machine (under -race) cannot itself send the 1,000 a second the default allows
	settings := s.App.Settings()
	found := false
	for i, r := range settings.RateLimits.Rules {
		if r.Label == "/api/webhooks/shopify" {
			found = r.MaxRequests == 1000 && r.Duration == 1
			settings.RateLimits.Rules[i].MaxRequests = 50
		}
	}
	if !found {
		t.Fatalf("no default webhook rule of 1000 per second: %+v", settings.RateLimits.Rules)
	}
	if err := s.App.Save(settings); err != nil {
		t.Fatal(err)
	}

	// a flood: 2,000 badly signed posts from 16 connections at once
	var limited, other atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				code, err := s.Post(testkit.Delivery{Topic: "orders/create", Body: []byte(`{}`), Signature: "bad"})
				switch {
				case err != nil:
					other.Add(1)
				case code == http.StatusTooManyRequests:
					limited.Add(1)
				case code != http.StatusUnauthorized:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if limited.Load() == 0 {
		t.Fatal("a flood of 2,000 posts got no 429")
	}
	if other.Load() != 0 {
		t.Errorf("%d flood posts got neither 401 nor 429", other.Load())
	}
}

// The public proof pages allow 60 requests per 10 s per client.
func TestRateLimitsProofPages(t *testing.T) {
	s := start(t, nil)
	for _, path := range []string{"/api/proof/NOPE", "/proof/NOPE"} {
		for i := 0; i < 60; i++ {
			if code, _ := s.Call(t, "GET", path, "", ""); code == http.StatusTooManyRequests {
				t.Fatalf("%s: request %d of 60 got 429", path, i+1)
			}
		}
		if code, _ := s.Call(t, "GET", path, "", ""); code != http.StatusTooManyRequests {
			t.Errorf("%s: request 61 in 10 s got %d, want 429", path, code)
		}
	}
}

// Rules an admin configured (here: limiter off, one own rule) are kept at serve.
func TestRateLimitsKeepConfiguredRules(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		app := testkit.NewApp(t)
		settings := app.Settings()
		settings.RateLimits.Enabled = enabled
		settings.RateLimits.Rules = []core.RateLimitRule{{Label: "*:auth", MaxRequests: 50, Duration: 60}}
		if err := app.Save(settings); err != nil {
			t.Fatal(err)
		}
		spine, err := hooks.Bind(app, testkit.Config(t, nil), clockwork.NewFakeClockAt(t0))
		if err != nil {
			t.Fatal(err)
		}
		spine.ScheduleJobs = false
		router, err := apis.NewRouter(app)
		if err != nil {
			t.Fatal(err)
		}
		if err := app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
			_, err := e.Router.BuildMux()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := app.ReloadSettings(); err != nil {
			t.Fatal(err)
		}
		rl := app.Settings().RateLimits
		if rl.Enabled != enabled || len(rl.Rules) != 1 || rl.Rules[0].MaxRequests != 50 || rl.Rules[0].Duration != 60 {
			t.Errorf("enabled=%v: configured rate limits changed at serve: %+v", enabled, rl)
		}
	}
}
