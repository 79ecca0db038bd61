package labmail

// ExtractWithin is the PDF text extraction with a chosen time limit: the fuzzer gives
// it a short one, so an input that makes the PDF library spin costs seconds, not the
// 20 s a lab email's attachment gets.
var ExtractWithin = extractWithin
