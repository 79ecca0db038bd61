package hooks

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/customers"
)

// exportCustomer answers with everything held about a customer, as a JSON download.
func (s *Spine) exportCustomer(e *core.RequestEvent) error {
	id := e.Request.PathValue("id")
	out, err := customers.ExportCustomerData(s.App, id, actorOf(e), s.now())
	return s.sendExport(e, "customer-"+id, out, err)
}

// exportDataRequest exports the data a customers/data_request asked for and marks it exported.
func (s *Spine) exportDataRequest(e *core.RequestEvent) error {
	id := e.Request.PathValue("id")
	out, err := customers.ExportDataRequest(s.App, id, actorOf(e), s.now())
	return s.sendExport(e, "data-request-"+id, out, err)
}

func (s *Spine) sendExport(e *core.RequestEvent, name string, out customers.Export, err error) error {
	if errors.Is(err, customers.ErrNotFound) {
		return e.NotFoundError(err.Error(), nil)
	}
	if err != nil {
		return e.InternalServerError("Could not export the customer's data.", err)
	}
	e.Response.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.json"`, name))
	return e.JSON(http.StatusOK, out)
}
