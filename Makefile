# opspine: `make run` to start it, `make test` to test it. See README.md.
GO        ?= go
BIN       := bin/opspine
BIN_ARM64 ?= bin/opspine-linux-arm64
LDFLAGS   := -s -w
FUZZTIME  ?= 10s

.PHONY: build build-arm64 run test lint unit fuzz bench fuzz-long clean

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

# Each fuzz target runs for FUZZTIME; its corpus lives in testdata/fuzz/ beside it.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzOrderPayload$$' -fuzztime $(FUZZTIME) ./app/shopify/
	$(GO) test -run '^$$' -fuzz '^FuzzMoneyMinorUnits$$' -fuzztime $(FUZZTIME) ./app/shopify/
	$(GO) test -run '^$$' -fuzz '^FuzzRedactPayload$$' -fuzztime $(FUZZTIME) ./app/shopify/
	$(GO) test -run '^$$' -fuzz '^FuzzLabReportParser$$' -fuzztime $(FUZZTIME) ./app/labmail/

fuzz-long:
	$(MAKE) fuzz FUZZTIME=10m

# Benchmarks: one table, each figure beside its ceiling measured in the same run and its
# target, with cost curves at 10k, 100k and 1M orders; the arm64 binary is measured
# under qemu-aarch64-static when it is installed. See BENCHMARKS.md.
bench: build build-arm64
	./$(BIN) bench --arm64-exe $(BIN_ARM64)

clean:
	rm -rf bin
