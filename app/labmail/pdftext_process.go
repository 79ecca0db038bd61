package labmail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// The PDF library reads untrusted files that anyone can email to the lab mailbox. On
// some crafted files it loops without reading, and a compressed content stream can
// unpack to gigabytes of glyphs before any limit of ours sees them: in this process
// that would spin a core for ever or take the whole server down (and, the email being
// read again after a restart, keep it down). So ExtractPDFText reads each PDF in a
// child process (this same executable, re-run with pdfChildEnv set), killed at
// extractTimeout and ended by its own watchdog above pdfChildMaxBytes of heap; the
// email is then quarantined with the reason.
const (
	pdfChildEnv         = "OPSPINE_LABMAIL_PDF_CHILD"
	pdfChildMaxBytesEnv = "OPSPINE_LABMAIL_PDF_MAX_BYTES"
	// exitTooMuchMemory is the child's status when its watchdog ends it.
	exitTooMuchMemory = 3
)

// pdfChildMaxBytes bounds the child's Go heap; a lab report needs a few MB.
var pdfChildMaxBytes int64 = 512 << 20

// pdfChildResult is what the child writes on its standard output.
type pdfChildResult struct {
	Text   string `json:"text"`
	Error  string `json:"error,omitempty"`
	NoText bool   `json:"no_text,omitempty"`
}

func init() {
	if os.Getenv(pdfChildEnv) == "1" {
		os.Exit(runPDFChild(os.Stdin, os.Stdout))
	}
}

// ExtractPDFText returns the text of a PDF row by row (cells of a table row joined by
// spaces, rows by newlines), so that a test name and its result in separate columns
// end up on one line. A malformed file returns an error, never a panic; one that takes
// longer than extractTimeout or more than pdfChildMaxBytes to read is given up.
func ExtractPDFText(data []byte) (string, error) {
	if err := checkPDFSize(data); err != nil { // refused before a process is started for it
		return "", err
	}
	exe, err := thisExecutable()
	if err != nil {
		return "", fmt.Errorf("labmail: find this executable to read the PDF: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), extractTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = []string{pdfChildEnv + "=1", pdfChildMaxBytesEnv + "=" + strconv.FormatInt(pdfChildMaxBytes, 10),
		"GOMEMLIMIT=" + strconv.FormatInt(pdfChildMaxBytes/2, 10)}
	cmd.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	runErr := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("labmail: reading the PDF took longer than %s", extractTimeout)
	case errors.As(runErr, &exit) && exit.ExitCode() == exitTooMuchMemory:
		return "", fmt.Errorf("labmail: reading the PDF took more than %d MB of memory; not a lab report", pdfChildMaxBytes>>20)
	case runErr != nil:
		return "", fmt.Errorf("labmail: the PDF reader failed (%v): %s", runErr, clip(stderr.String(), 300))
	}
	var res pdfChildResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return "", fmt.Errorf("labmail: the PDF reader's answer is unreadable: %w", err)
	}
	switch {
	case res.NoText:
		return "", ErrNoTextLayer
	case res.Error != "":
		return "", errors.New(res.Error)
	}
	return res.Text, nil
}

// thisExecutable is /proc/self/exe where there is one (it still works after the
// binary was replaced by an upgrade), else the executable's path.
func thisExecutable() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	return os.Executable()
}

// runPDFChild is the child's whole life: read the PDF from in, write its text (or why
// not) to out as JSON, and return the exit status.
func runPDFChild(in io.Reader, out io.Writer) int {
	limit, err := strconv.ParseInt(os.Getenv(pdfChildMaxBytesEnv), 10, 64)
	if err != nil || limit <= 0 {
		limit = pdfChildMaxBytes
	}
	debug.SetMemoryLimit(limit / 2)
	go watchHeap(limit)
	data, err := io.ReadAll(io.LimitReader(in, maxPDFBytesRead+1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "read the PDF:", err)
		return 1
	}
	text, err := extractPDFText(data, bytes.NewReader(data))
	res := pdfChildResult{Text: text}
	switch {
	case errors.Is(err, ErrNoTextLayer):
		res = pdfChildResult{NoText: true}
	case err != nil:
		res = pdfChildResult{Error: err.Error()}
	}
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "write the text:", err)
		return 1
	}
	return 0
}

// watchHeap ends the process when its heap passes limit.
func watchHeap(limit int64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for {
		metrics.Read(sample)
		if int64(sample[0].Value.Uint64()) > limit {
			fmt.Fprintf(os.Stderr, "heap passed %d MB\n", limit>>20)
			os.Exit(exitTooMuchMemory)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
