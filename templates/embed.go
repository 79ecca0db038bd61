// Package templates holds the text/template and html/template files opspine renders:
// emails now, pages and labels later. They are embedded in the binary; the package
// that renders a kind of template parses it once, at first use.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed email/*
var files embed.FS

// FS holds every template under its directory: email/<name>.txt.tmpl (text/template:
// a "subject" block and the plain-text body) and email/<name>.html.tmpl
// (html/template: the HTML body).
var FS fs.FS = files
