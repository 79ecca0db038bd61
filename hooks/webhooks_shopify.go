package hooks

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/ingest"
)

// bindShopifyWebhookApi registers POST /api/webhooks/shopify.
func (s *Spine) bindShopifyWebhookApi(se *core.ServeEvent) {
	se.Router.POST("/api/webhooks/shopify", s.receiveShopifyWebhook)
}

// receiveShopifyWebhook verifies a delivery and commits it to webhook_inbox before it
// answers. Unknown shop or bad signature: 401 and a counted ops event, nothing else
// stored. Stored (or already stored): 200. Cannot store: 503, so Shopify retries.
// Processing happens after the answer, in the pipeline.
func (s *Spine) receiveShopifyWebhook(e *core.RequestEvent) error {
	started := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(e.Response, e.Request.Body, s.Config.WebhookMaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return e.Error(http.StatusRequestEntityTooLarge, "Webhook body is larger than OPSPINE_WEBHOOK_MAX_BODY_BYTES.", nil)
		}
		return e.BadRequestError("Could not read the request body.", nil)
	}
	d := ingest.DeliveryFromRequest(e.Request.Header, body)

	shop, err := ingest.FindShopByDomain(s.App.DB(), d.ShopDomain)
	switch {
	case errors.Is(err, ingest.ErrUnknownShop):
		s.countRejection(ingest.RejectUnknownShop, d.ShopDomain, false)
		return e.UnauthorizedError("Unknown shop.", nil)
	case err != nil:
		s.App.Logger().Error("webhook: look up shop", slog.String("error", err.Error()))
		return e.Error(http.StatusServiceUnavailable, "Cannot read shops right now; Shopify will retry.", nil)
	}
	if !ingest.VerifyShopifyHMAC(body, e.Request.Header.Get("X-Shopify-Hmac-Sha256"), shop.Secrets) {
		s.countRejection(ingest.RejectBadSignature, shop.Domain, true)
		return e.UnauthorizedError("Invalid signature.", nil)
	}

	d.ReceiveTime = time.Since(started)
	id, duplicate, err := s.Inbox.Store(e.Request.Context(), d, s.now())
	if err != nil {
		s.App.Logger().Error("webhook: store delivery", slog.String("webhook_id", d.WebhookID), slog.String("error", err.Error()))
		return e.Error(http.StatusServiceUnavailable, "Could not store the delivery; Shopify will retry.", nil)
	}
	if !duplicate {
		s.Pipeline.Enqueue(id)
	}
	return e.JSON(http.StatusOK, map[string]any{"id": id, "duplicate": duplicate})
}

// countRejection never fails the request: a 401 stays a 401 even if counting fails.
func (s *Spine) countRejection(reason, domain string, known bool) {
	if err := ingest.CountRejection(s.App.DB(), s.now(), reason, domain, known); err != nil {
		s.App.Logger().Warn("webhook: count rejection", slog.String("reason", reason), slog.String("error", err.Error()))
	}
}
