# opspine: `make run` to start it, `make test` to test it. See README.md.
GO        ?= go
BIN       := bin/opspine
BIN_ARM64 ?= bin/opspine-linux-arm64
LDFLAGS   := -s -w
FUZZTIME  ?= 10s

.PHONY: build build-arm64 run test lint unit fuzz bench fuzz-long fuzz-corpus clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# Cross-compiles for a 64-bit ARM Linux box (Raspberry Pi 4/5). BIN_ARM64 names the
# output; TestArm64BinaryServesUnderQemu (app/benchmark) builds it this way and runs it
# under qemu-user.
build-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_ARM64) .

# Starts opspine on http://127.0.0.1:8090 with its data in ./pb_data.
run: build
	./$(BIN) serve --http 127.0.0.1:8090 --dir ./pb_data

# Every test: formatting, vet, the race-checked suite, and each fuzzer briefly.
test: lint unit fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# Every fuzz target, as package:Name: one per parser of outside data (Shopify webhook
# payloads and requests, Admin API answers, lab emails, lab PDFs and their text, staff
# lab_pdf_patterns, lab result uploads, proof page ids). Each keeps its corpus in
# <package>/testdata/fuzz/<Name>/, which every `go test` runs as ordinary test cases.
FUZZ_TARGETS := \
	app/shopify:FuzzOrderPayload app/shopify:FuzzMoneyMinorUnits app/shopify:FuzzRedactPayload \
	app/shopify:FuzzWebhookPayload app/shopify:FuzzAdminOrdersPage \
	app/ingest:FuzzWebhookRequest \
	app/labmail:FuzzLabReportParser app/labmail:FuzzLabPatterns app/labmail:FuzzParseMessage \
	app/labmail:FuzzExtractPDFText \
	hooks:FuzzLabResultUpload hooks:FuzzProofPublicID

# `make fuzz` runs each fuzz target for FUZZTIME (`make fuzz-long`: 10 minutes each).
# A failure leaves the failing input in testdata/fuzz/<Name>/: fix the code, keep the
# file as a regression case and commit both.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) ./$${t%%:*}/; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=10m

# `make fuzz-corpus` grows the committed corpus: it runs each fuzz target for
# CORPUSTIME, then replaces the hash-named files of <package>/testdata/fuzz/<Name>/ with
# at most CORPUS_FILES inputs of at most CORPUS_FILE_BYTES each, picked across the sizes
# of what the fuzzer found interesting (its cache: $(go env GOCACHE)/fuzz/<import
# path>/<Name>/). Hand-named files (regression-*) are kept. Review the diff and commit.
CORPUSTIME        ?= 90s
CORPUS_FILES      ?= 40
CORPUS_FILE_BYTES ?= 20000
fuzz-corpus:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz/$$($(GO) list -m); \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t#*:}; dst=$$pkg/testdata/fuzz/$$name; \
	  echo "fuzz $$t for $(CORPUSTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(CORPUSTIME) ./$$pkg/; \
	  mkdir -p $$dst; find $$dst -maxdepth 1 -type f -regex '.*/[0-9a-f]\{16\}' -delete; \
	  [ -d $$cache/$$pkg/$$name ] || continue; \
	  find $$cache/$$pkg/$$name -maxdepth 1 -type f -size -$(CORPUS_FILE_BYTES)c -printf '%s %p\n' | sort -n | \
	    awk -v max=$(CORPUS_FILES) '{ f[NR] = $$2 } END { step = NR > max ? NR / max : 1; \
	      for (i = 1; i <= NR && n < max; i += step) { print f[int(i)]; n++ } }' | \
	    xargs -r cp -t $$dst; \
	  echo "  $$dst: $$(ls $$dst | wc -l) files, $$(du -sh $$dst | cut -f1)"; \
	done

# Benchmarks: one table, each figure beside its ceiling measured in the same run and its
# target, with cost curves at 10k, 100k and 1M orders; the arm64 binary is measured
# under qemu-aarch64-static when it is installed. See BENCHMARKS.md.
bench: build build-arm64
	./$(BIN) bench --arm64-exe $(BIN_ARM64)

clean:
	rm -rf bin
