# Gatehouse developer tasks. `make test` is what CI runs (.ci/run).
GO ?= go
FUZZTIME ?= 4000x

.PHONY: test unit unit-raw fuzz vet build bench generate

test: vet unit unit-raw fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# Race-detector builds read and write sockets with ordinary system calls (see internal/sockio);
# this runs the socket-facing packages once more as they ship, with raw ones.
unit-raw:
	$(GO) test -count=1 ./internal/sockio/ ./internal/server/h1/ ./internal/upstream/h1/ ./internal/proxy/

# A short run of every fuzz target (their seed corpora also run in `unit`), counted in executions
# rather than seconds: a duration-bounded run can fail with "context deadline exceeded" when
# the deadline lands mid-minimization on a loaded machine. FUZZTIME=1m for a
# longer local run.
FUZZ_TARGETS = \
	FuzzNormalizePath:./internal/router/ \
	FuzzLookup:./internal/router/ \
	FuzzLoad:./internal/config/ \
	FuzzVerify:./internal/middleware/auth/ \
	FuzzPathTemplate:./internal/translate/grpc/ \
	FuzzDecodeEntry:./internal/store/ \
	FuzzShape:./internal/aggregate/shape/ \
	FuzzParse:./internal/aggregate/tmpl/ \
	FuzzParseHead:./internal/server/h1/ \
	FuzzChunkedBody:./internal/server/h1/ \
	FuzzServe:./internal/server/h1/ \
	FuzzParseOrigin:./internal/server/h1/ \
	FuzzChunkedReader:./internal/wire/ \
	FuzzCanonicalKey:./internal/wire/ \
	FuzzResponseHead:./internal/upstream/h1/ \
	FuzzEnvValue:./internal/config/

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/gatehouse ./cmd/gatehouse

generate:
	$(GO) generate ./...

bench:
	bash bench/run.sh
