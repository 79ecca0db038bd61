package templates

import (
	"embed"
	"io/fs"
)

//go:embed proof/*.html.tmpl
var proofFiles embed.FS

// ProofFS holds the proof portal's html/template pages: proof/layout.html.tmpl (the
// frame every page shares: head, styles, script) and one file per page that defines
// "content" (proof/batch.html.tmpl, proof/not_found.html.tmpl).
var ProofFS fs.FS = proofFiles
