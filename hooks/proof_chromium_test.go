package hooks_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which CI installs (.ci/run). Without it the test
// fails and says how to install it: a proof page nobody rendered is not proven.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium is not installed, and the proof page must be checked in a real browser: " +
		"install it with `apt-get update && apt-get install -y chromium` (CI does, in .ci/run).")
	return ""
}

// startChromium starts one headless Chromium for the test, with its own profile.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// the first Do starts the browser; no timeout on it, that would end the browser too
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

// recordViolations runs in every document before its own scripts (DevTools injects it,
// so the page's CSP does not apply to it) and keeps each CSP violation the page causes.
const recordViolations = `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at line " + e.lineNumber);
});`

// pageTab is one tab with everything it wrote to the console.
type pageTab struct {
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

// openTab opens a tab at a 390 × 844 phone viewport that records console errors,
// uncaught exceptions, error-level browser log entries and CSP violations.
func openTab(t *testing.T, browser context.Context) *pageTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tab := &pageTab{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		tab.mu.Lock()
		defer tab.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				tab.console = append(tab.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			tab.console = append(tab.console, "exception: "+text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				tab.console = append(tab.console, fmt.Sprintf("log %s/%s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordViolations})
			return err
		}),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch),
	)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// problems lists the console errors and CSP violations so far, after letting late
// messages arrive.
func (tab *pageTab) problems(t *testing.T) []string {
	t.Helper()
	violations, err := chromedp.Run(tab.ctx, chromedp.Evaluate[[]string](`window.__cspViolations || ["the violation recorder did not run"]`))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the browser log and console events trail the page
	tab.mu.Lock()
	defer tab.mu.Unlock()
	out := append([]string{}, tab.console...)
	for _, v := range violations {
		out = append(out, "CSP violation: "+v)
	}
	return out
}

// layout is what the page looks like at the phone's width.
type layout struct {
	InnerWidth    float64  `json:"innerWidth"`
	ScrollWidth   float64  `json:"scrollWidth"`
	BodyFontPx    float64  `json:"bodyFontPx"`
	ScriptRan     string   `json:"scriptRan"`
	HeadlineRight float64  `json:"headlineRight"`
	HeadlineTop   float64  `json:"headlineTop"`
	Overflowing   []string `json:"overflowing"`
	SmallTargets  []string `json:"smallTargets"`
	Styled        bool     `json:"styled"`
}

const measureLayout = `(() => {
  const vw = window.innerWidth;
  const h1 = document.querySelector("h1").getBoundingClientRect();
  const visible = (e) => e.getClientRects().length > 0;
  return {
    innerWidth: vw,
    scrollWidth: document.documentElement.scrollWidth,
    bodyFontPx: parseFloat(getComputedStyle(document.body).fontSize),
    scriptRan: document.documentElement.dataset.js || "",
    headlineRight: h1.right,
    headlineTop: h1.top,
    overflowing: [...document.querySelectorAll("body *")].filter(visible)
      .filter((e) => { const r = e.getBoundingClientRect(); return r.right > vw + 0.5 || r.left < -0.5; })
      .map((e) => e.tagName.toLowerCase() + "." + e.className),
    smallTargets: [...document.querySelectorAll("a, button")].filter(visible)
      .filter((e) => e.getBoundingClientRect().height < 44)
      .map((e) => e.textContent.trim()),
    styled: getComputedStyle(document.querySelector(".wrap")).maxWidth !== "none",
  };
})()`

// TestProofPageInChromium renders the proof pages in headless Chromium on a phone-sized
// viewport: the customer sees the product, batch code and verdict, the page fits 390 px
// without sideways scrolling, its nonce'd style and script apply, and nothing reaches
// the console: no errors, no exceptions, no CSP violations.
func TestProofPageInChromium(t *testing.T) {
	browser := startChromium(t)
	b := seedProofStates(t)
	cases := []struct {
		name   string
		path   string
		status int64
		want   []string
	}{
		{"released", "/proof/" + b.released.PublicID, 200,
			[]string{"Protocol Raw", "PASS", "Chicken & Tripe <Raw>", b.released.Code, "21 Nov 2026", "21 Dec 2026", "Salmonella", "Absent in 25 g", "≤ 300 cfu/g", "Download the lab report (PDF)"}},
		{"failed", "/proof/" + b.failed.PublicID, 200, []string{"FAIL", b.failed.Code, "Detected"}},
		{"on hold", "/proof/" + b.held.PublicID, 200, []string{"AWAITING RESULTS", b.held.Code}},
		{"recalled", "/proof/" + b.recalled.PublicID, 200, []string{"RECALLED", "Do not feed this product.", b.recalled.Code}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := openTab(t, browser)
			res, err := chromedp.RunResponse(tab.ctx, chromedp.Navigate(b.s.URL+c.path), chromedp.WaitVisible(chromedp.CSS("h1")))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.status {
				t.Fatalf("status %d, want %d", res.Status, c.status)
			}
			text, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("visible text lacks %q:\n%s", w, text)
				}
			}
			checkPhoneLayout(t, tab)
			if p := tab.problems(t); len(p) > 0 {
				t.Errorf("the page caused %d console errors or CSP violations:\n%s", len(p), strings.Join(p, "\n"))
			}
		})
	}

	t.Run("unknown id", func(t *testing.T) {
		tab := openTab(t, browser)
		url := b.s.URL + "/proof/0123456789abcdef0123"
		res, err := chromedp.RunResponse(tab.ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("h1")))
		if err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 404 || !strings.Contains(text, "We couldn’t find that batch") {
			t.Errorf("%d %q", res.Status, text)
		}
		checkPhoneLayout(t, tab)
		// Chromium reports a document answered 404 in its network log; that line is the
		// point of the page. Anything else is a problem.
		for _, p := range tab.problems(t) {
			if !(strings.HasPrefix(p, "log network/error:") && strings.Contains(p, "404") && strings.Contains(p, url)) {
				t.Errorf("the 404 page caused: %s", p)
			}
		}
	})

	// The listeners above must be able to fail: a style without the nonce, added after
	// load, is refused by the CSP and must be reported.
	t.Run("a violation is caught", func(t *testing.T) {
		tab := openTab(t, browser)
		if err := chromedp.Do(tab.ctx, chromedp.Navigate(b.s.URL+"/proof/"+b.released.PublicID), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatal(err)
		}
		inject := `(() => { const s = document.createElement("style"); s.textContent = "body{color:red}"; document.head.appendChild(s); return true; })()`
		if _, err := chromedp.Run(tab.ctx, chromedp.Evaluate[bool](inject)); err != nil {
			t.Fatal(err)
		}
		problems := tab.problems(t)
		joined := strings.Join(problems, "\n")
		for _, want := range []string{"CSP violation: style-src", "log security/error"} {
			if !strings.Contains(joined, want) {
				t.Errorf("an inline style without the nonce was not caught as %q; got:\n%s", want, joined)
			}
		}
	})
}

func checkPhoneLayout(t *testing.T, tab *pageTab) {
	t.Helper()
	l, err := chromedp.Run(tab.ctx, chromedp.Evaluate[layout](measureLayout))
	if err != nil {
		t.Fatal(err)
	}
	if l.InnerWidth != 390 {
		t.Fatalf("viewport is %v px wide, want 390 (is the viewport meta tag there?)", l.InnerWidth)
	}
	if !l.Styled || l.ScriptRan != "on" {
		t.Errorf("the nonce'd style applied: %v; the nonce'd script ran: %q", l.Styled, l.ScriptRan)
	}
	if l.ScrollWidth > l.InnerWidth {
		t.Errorf("page is %v px wide at a %v px viewport: it scrolls sideways", l.ScrollWidth, l.InnerWidth)
	}
	if len(l.Overflowing) > 0 {
		t.Errorf("elements cross the screen edge: %v", l.Overflowing)
	}
	if l.BodyFontPx < 16 {
		t.Errorf("body text is %v px; at least 16 px reads on a phone without zooming", l.BodyFontPx)
	}
	if l.HeadlineTop > 300 || l.HeadlineRight > l.InnerWidth {
		t.Errorf("the verdict is not in the first screen: top %v, right %v", l.HeadlineTop, l.HeadlineRight)
	}
	if len(l.SmallTargets) > 0 {
		t.Errorf("links or buttons shorter than 44 px, hard to tap: %q", l.SmallTargets)
	}
}
