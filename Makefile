# Gatehouse developer tasks. `make test` is what CI runs (.ci/run).
GO ?= go
FUZZTIME ?= 10s

.PHONY: test unit fuzz vet build bench generate

test: vet unit fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# A short run of every fuzz target (the corpus in testdata/fuzz is replayed by `unit` too).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzNormalizePath$$' -fuzztime=$(FUZZTIME) ./internal/router/
	$(GO) test -run='^$$' -fuzz='^FuzzLookup$$' -fuzztime=$(FUZZTIME) ./internal/router/
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) ./internal/config/

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/gatehouse ./cmd/gatehouse

generate:
	$(GO) generate ./...

bench:
	bash bench/run.sh
