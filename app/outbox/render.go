package outbox

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/opspine/opspine/templates"
)

// emailTemplate is one email's pair of templates; either may be nil.
type emailTemplate struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// view is what every email template renders.
type view struct {
	Brand string
	Data  any
}

// rendered is an email's subject and bodies.
type rendered struct {
	Subject, Text, HTML string
}

// catalog parses templates/email once, at first use.
var catalog = sync.OnceValues(func() (map[string]*emailTemplate, error) {
	return parseEmailTemplates(templates.FS)
})

func parseEmailTemplates(fsys fs.FS) (map[string]*emailTemplate, error) {
	paths, err := fs.Glob(fsys, "email/*.tmpl")
	if err != nil {
		return nil, err
	}
	out := map[string]*emailTemplate{}
	get := func(name string) *emailTemplate {
		if out[name] == nil {
			out[name] = &emailTemplate{}
		}
		return out[name]
	}
	for _, p := range paths {
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		base := path.Base(p)
		switch {
		case strings.HasSuffix(base, ".txt.tmpl"):
			t, err := texttemplate.New(base).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return nil, fmt.Errorf("outbox: parse %s: %w", p, err)
			}
			get(strings.TrimSuffix(base, ".txt.tmpl")).text = t
		case strings.HasSuffix(base, ".html.tmpl"):
			t, err := htmltemplate.New(base).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return nil, fmt.Errorf("outbox: parse %s: %w", p, err)
			}
			get(strings.TrimSuffix(base, ".html.tmpl")).html = t
		default:
			return nil, fmt.Errorf("outbox: %s is neither <name>.txt.tmpl nor <name>.html.tmpl", p)
		}
	}
	return out, nil
}

// TemplateNames lists the email templates there are.
func TemplateNames() ([]string, error) {
	all, err := catalog()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// render renders the named email for brand and data. A subject comes from the text
// template's "subject" block unless subject is given.
func render(name, brand string, data any, subject string) (rendered, error) {
	all, err := catalog()
	if err != nil {
		return rendered{}, err
	}
	t := all[name]
	if t == nil {
		names, _ := TemplateNames()
		return rendered{}, fmt.Errorf("%w %q (there are: %s)", ErrUnknownTemplate, name, strings.Join(names, ", "))
	}
	v := view{Brand: brand, Data: data}
	var r rendered
	var buf bytes.Buffer
	if t.text != nil {
		if err := t.text.Execute(&buf, v); err != nil {
			return r, fmt.Errorf("outbox: render %s.txt.tmpl: %w", name, err)
		}
		r.Text = buf.String()
		if subject == "" && t.text.Lookup("subject") != nil {
			buf.Reset()
			if err := t.text.ExecuteTemplate(&buf, "subject", v); err != nil {
				return r, fmt.Errorf("outbox: render the subject of %s: %w", name, err)
			}
			subject = buf.String()
		}
	}
	if t.html != nil {
		buf.Reset()
		if err := t.html.Execute(&buf, v); err != nil {
			return r, fmt.Errorf("outbox: render %s.html.tmpl: %w", name, err)
		}
		r.HTML = buf.String()
	}
	r.Subject = strings.Join(strings.Fields(subject), " ") // one line, whatever the template did
	if r.Subject == "" {
		return r, fmt.Errorf("%w: %s has no subject: define a \"subject\" block in %s.txt.tmpl or pass Email.Subject",
			ErrInvalidEmail, name, name)
	}
	return r, nil
}
