package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/proof"
)

// bindProofPages registers the public proof page, its JSON and the lab report
// download; the event recorder they share stops (writing what it holds) when the app
// terminates, before PocketBase closes the database.
func (s *Spine) bindProofPages(se *core.ServeEvent) {
	pages := NewProofPages(s.App, s.Config, s.now)
	pages.Bind(se.Router)
	s.App.OnTerminate().BindFunc(func(te *core.TerminateEvent) error {
		pages.Close()
		return te.Next()
	})
}

// proofCacheControl lets browsers and CDNs keep an answer for a minute: short, because
// a batch's status can change (a recall must show quickly).
const proofCacheControl = "public, max-age=60"

// ProofPages serves the proof portal (SOP-PROOF-01) to anyone who has a batch's public
// id: GET /proof/{public_id} (HTML), GET /api/proof/{public_id} (the same as JSON) and
// GET /proof/{public_id}/report.pdf (the lab report, released batches only). Every
// answer is counted in proof_page_events without IP or user agent.
type ProofPages struct {
	App      core.App
	Brand    string
	Location *time.Location
	Now      func() time.Time
	Events   *proof.EventRecorder
}

// NewProofPages prepares the proof portal of app and starts its event recorder.
func NewProofPages(app core.App, cfg config.Config, now func() time.Time) *ProofPages {
	loc := cfg.Timezone
	if loc == nil {
		loc = time.UTC
	}
	return &ProofPages{App: app, Brand: cfg.BrandName, Location: loc, Now: now, Events: proof.NewEventRecorder(app)}
}

// Bind registers the routes on r. Successful answers stay out of PocketBase's request
// log, which would otherwise store each visitor's IP address and user agent.
func (p *ProofPages) Bind(r *router.Router[*core.RequestEvent]) {
	quiet := apis.SkipSuccessActivityLog()
	r.GET("/proof/{public_id}", p.servePage).Bind(quiet)
	r.GET("/proof/{public_id}/report.pdf", p.serveReport).Bind(quiet)
	r.GET("/api/proof/{public_id}", p.serveJSON).Bind(quiet)
}

// Close writes the queued events and stops the recorder.
func (p *ProofPages) Close() { p.Events.Close() }

// servePage answers the HTML page, or the friendly 404 page.
func (p *ProofPages) servePage(e *core.RequestEvent) error {
	nonce := proof.NewNonce()
	setProofHeaders(e, proof.ContentSecurityPolicy(nonce))
	found, err := p.find(e, proof.EventView)
	if errors.Is(err, proof.ErrBatchNotFound) {
		return p.notFoundPage(e, nonce)
	}
	if err != nil {
		return proofError(e, err)
	}
	var page bytes.Buffer
	if err := proof.RenderBatchPage(&page, &found.View, nonce); err != nil {
		return proofError(e, err)
	}
	e.Response.Header().Set("Cache-Control", proofCacheControl)
	return e.Blob(http.StatusOK, "text/html; charset=utf-8", page.Bytes())
}

// serveJSON answers the same view as JSON.
func (p *ProofPages) serveJSON(e *core.RequestEvent) error {
	setProofHeaders(e, "default-src 'none'; frame-ancestors 'none'")
	found, err := p.find(e, proof.EventJSON)
	if errors.Is(err, proof.ErrBatchNotFound) {
		e.Response.Header().Set("Cache-Control", proofCacheControl)
		return e.JSON(http.StatusNotFound, map[string]string{
			"message": "No batch has this id. Check the address printed under the QR code on the pouch.",
		})
	}
	if err != nil {
		return proofError(e, err)
	}
	body, err := json.Marshal(found.View)
	if err != nil {
		return proofError(e, err)
	}
	e.Response.Header().Set("Cache-Control", proofCacheControl)
	return e.Blob(http.StatusOK, "application/json; charset=utf-8", body)
}

// serveReport answers the lab report PDF of a released batch as a download; any other
// batch, or one without a report, gets the 404 page.
func (p *ProofPages) serveReport(e *core.RequestEvent) error {
	nonce := proof.NewNonce()
	setProofHeaders(e, proof.ContentSecurityPolicy(nonce))
	found, err := p.find(e, proof.EventReportDownload)
	if errors.Is(err, proof.ErrBatchNotFound) {
		return p.notFoundPage(e, nonce)
	}
	if err != nil {
		return proofError(e, err)
	}
	if !found.HasReport() {
		p.record(e, found.BatchID, proof.EventNotFound)
		return p.notFoundPage(e, nonce)
	}
	col, err := p.App.FindCachedCollectionByNameOrId("lab_results")
	if err != nil {
		return proofError(e, err)
	}
	fsys, err := p.App.NewFilesystem()
	if err != nil {
		return proofError(e, err)
	}
	defer fsys.Close()
	key := col.BaseFilesPath() + "/" + found.LabResultID + "/" + found.ReportFile
	h := e.Response.Header()
	// a download, not a page: the browser never renders it here, so nothing may run
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Type", "application/pdf")
	h.Set("Content-Disposition", `attachment; filename="`+found.View.BatchCode+`-lab-report.pdf"`)
	h.Set("Cache-Control", proofCacheControl)
	if err := fsys.Serve(e.Response, e.Request, key, found.View.BatchCode+"-lab-report.pdf"); err != nil {
		if e.Written() {
			return err
		}
		h.Del("Content-Disposition")
		h.Del("Content-Type")
		e.App.Logger().Error("proof: lab report file missing", slog.String("lab_result", found.LabResultID), slog.String("error", err.Error()))
		setProofHeaders(e, proof.ContentSecurityPolicy(nonce))
		return p.notFoundPage(e, nonce)
	}
	p.record(e, found.BatchID, proof.EventReportDownload)
	return nil
}

// find looks the batch up and records the event: kind when found, not_found when the
// id is well formed but unknown. A malformed id is refused before any query and is
// not recorded, so junk requests cost neither a read nor a write.
func (p *ProofPages) find(e *core.RequestEvent, kind string) (*proof.BatchProof, error) {
	publicID := e.Request.PathValue("public_id")
	if !proof.ValidPublicID(publicID) {
		return nil, proof.ErrBatchNotFound
	}
	found, err := proof.FindBatchProofByPublicID(p.App.DB(), publicID, p.Brand, p.Location)
	switch {
	case errors.Is(err, proof.ErrBatchNotFound):
		p.record(e, "", proof.EventNotFound)
	case err == nil && kind != proof.EventReportDownload: // a download is counted once it is served
		p.record(e, found.BatchID, kind)
	}
	return found, err
}

// record queues the event; it never waits for the database.
func (p *ProofPages) record(e *core.RequestEvent, batchID, kind string) {
	p.Events.Record(proof.Event{
		BatchID:      batchID,
		PublicID:     e.Request.PathValue("public_id"),
		Kind:         kind,
		ReferrerHost: proof.ReferrerHostOf(e.Request.Referer()),
		DeviceType:   proof.DeviceTypeOf(e.Request.UserAgent()),
		At:           p.Now().UTC(),
	})
}

func (p *ProofPages) notFoundPage(e *core.RequestEvent, nonce string) error {
	var page bytes.Buffer
	if err := proof.RenderNotFoundPage(&page, p.Brand, nonce); err != nil {
		return proofError(e, err)
	}
	e.Response.Header().Set("Cache-Control", proofCacheControl)
	return e.Blob(http.StatusNotFound, "text/html; charset=utf-8", page.Bytes())
}

// setProofHeaders sets the headers every proof answer carries.
func setProofHeaders(e *core.RequestEvent, csp string) {
	h := e.Response.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// proofError answers 500 without caching; PocketBase logs err.
func proofError(e *core.RequestEvent, err error) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.InternalServerError("Could not load this batch just now; please try again in a minute.", err)
}
