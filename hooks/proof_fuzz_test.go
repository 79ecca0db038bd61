package hooks

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/proof"
)

var publicIDForm = regexp.MustCompile(`^[a-z0-9]{20}$`)

// FuzzProofPublicID requests /proof/{id}, /proof/{id}/report.pdf and /api/proof/{id}
// with any path. The proof portal has no App and no event recorder here, so touching
// the database or recording an event panics: a malformed id must be answered 404
// (HTML or JSON) from the id alone. ValidPublicID accepts exactly 20 of [a-z0-9].
func FuzzProofPublicID(f *testing.F) {
	for _, s := range []string{"0123456789abcdef0123", "mzxw6ytboi2dcnzrgq3t", "0123456789abcdef012", "0123456789ABCDEF0123",
		"..%2F..%2Fetc%2Fpasswd", "0123456789abcdef'--;", "%00", "0123456789abcdef012%C3%A9", "", "a/b", "%2e%2e", strings.Repeat("z", 300)} {
		f.Add(s)
	}
	p := &ProofPages{Brand: "Protocol Raw", Location: time.UTC, Now: time.Now}
	f.Fuzz(func(t *testing.T, segment string) {
		ran := false
		serve := func(h func(*core.RequestEvent) error) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				ran = true
				id := r.PathValue("public_id")
				if proof.ValidPublicID(id) != publicIDForm.MatchString(id) {
					t.Fatalf("ValidPublicID(%q) = %v", id, proof.ValidPublicID(id))
				}
				if proof.ValidPublicID(id) {
					w.WriteHeader(http.StatusTeapot) // well formed: looked up in the database, tested elsewhere
					return
				}
				e := &core.RequestEvent{}
				e.Request, e.Response = r, w
				if err := h(e); err != nil {
					t.Fatalf("%s: %v", r.URL.Path, err)
				}
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /proof/{public_id}", serve(p.servePage))
		mux.HandleFunc("GET /proof/{public_id}/report.pdf", serve(p.serveReport))
		mux.HandleFunc("GET /api/proof/{public_id}", serve(p.serveJSON))
		for _, path := range []string{"/proof/" + segment, "/proof/" + segment + "/report.pdf", "/api/proof/" + segment} {
			u, err := url.Parse(path)
			if err != nil || u.Host != "" || u.Scheme != "" {
				continue // not a path a client can send
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL, req.RequestURI = u, u.RequestURI()
			rec := httptest.NewRecorder()
			ran = false
			mux.ServeHTTP(rec, req)
			switch {
			case !ran: // no route (a path of other depth) or ServeMux's redirect of an unclean path
			case rec.Code == http.StatusTeapot:
			case rec.Code != http.StatusNotFound:
				t.Fatalf("%s: HTTP %d %s", path, rec.Code, rec.Body)
			case rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "":
				t.Fatalf("%s: 404 without the proof headers: %v", path, rec.Header())
			}
		}
	})
}
