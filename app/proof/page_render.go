package proof

import (
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"sync"

	"github.com/opspine/opspine/templates"
)

// pages are the proof portal's templates, parsed once at first use: each page is the
// shared layout plus its own "content".
var pages = sync.OnceValues(func() (map[string]*template.Template, error) {
	return parsePages(templates.ProofFS)
})

func parsePages(fsys fs.FS) (map[string]*template.Template, error) {
	layout, err := template.ParseFS(fsys, "proof/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("proof: parse layout: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"batch", "not_found"} {
		t, err := template.Must(layout.Clone()).ParseFS(fsys, "proof/"+name+".html.tmpl")
		if err != nil {
			return nil, fmt.Errorf("proof: parse page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

type pageData struct {
	Brand string
	Title string
	Nonce string
	View  *View
}

// RenderBatchPage writes the proof page of v; nonce is the response's CSP nonce.
func RenderBatchPage(w io.Writer, v *View, nonce string) error {
	title := v.Product + " · batch " + v.BatchCode + " · " + v.Brand
	return render(w, "batch", pageData{Brand: v.Brand, Title: title, Nonce: nonce, View: v})
}

// RenderNotFoundPage writes the friendly page for an id that names no batch.
func RenderNotFoundPage(w io.Writer, brand, nonce string) error {
	return render(w, "not_found", pageData{Brand: brand, Title: "Batch not found · " + brand, Nonce: nonce})
}

func render(w io.Writer, page string, data pageData) error {
	set, err := pages()
	if err != nil {
		return err
	}
	if err := set[page].ExecuteTemplate(w, "layout", data); err != nil {
		return fmt.Errorf("proof: render %s page: %w", page, err)
	}
	return nil
}
