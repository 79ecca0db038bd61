package proof

import (
	"regexp"
	"strings"
	"testing"
)

func TestRenderBatchPageEscapesAndCarriesTheNonce(t *testing.T) {
	yes := true
	v := &View{
		Brand: "Protocol Raw", PublicID: "0123456789abcdef0123", BatchCode: "PR-261121-001",
		Product: `Lamb <script>alert(1)</script>`, Verdict: VerdictPass, Headline: "PASS", Message: "ok",
		Tests:     []Test{{Name: `"><img src=x onerror=alert(1)>`, Result: "Absent", Limit: SalmonellaLimit, Pass: &yes}},
		ReportURL: ReportPath("0123456789abcdef0123"),
	}
	var b strings.Builder
	nonce := NewNonce()
	if err := RenderBatchPage(&b, v, nonce); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script>alert", "<img src=x"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	tags := regexp.MustCompile(`<(style|script)\b[^>]*>`).FindAllString(page, -1)
	if len(tags) != 2 {
		t.Fatalf("tags %q", tags)
	}
	for _, tag := range tags {
		if !strings.Contains(tag, `nonce="`+nonce+`"`) {
			t.Errorf("%s lacks the nonce %s", tag, nonce)
		}
	}
	if !strings.Contains(page, `href="/proof/0123456789abcdef0123/report.pdf"`) {
		t.Error("no report link")
	}
}

func TestNonceAndPolicy(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := NewNonce()
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(n) || seen[n] {
			t.Fatalf("nonce %q: malformed or repeated", n)
		}
		seen[n] = true
	}
	csp := ContentSecurityPolicy("abc")
	want := "default-src 'none'; style-src 'nonce-abc'; script-src 'nonce-abc'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if csp != want {
		t.Errorf("CSP\n %s\nwant\n %s", csp, want)
	}
}
