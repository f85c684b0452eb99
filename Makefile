# Stent's development tasks. `make` (or `make help`) lists them.
# CI runs .ci/run, which checks gofmt and go vet and runs `go test -race ./...`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# protoc-gen-go is installed by `go install` into GOPATH/bin.
export PATH := $(shell $(GO) env GOPATH)/bin:$(PATH)

SQLITE_MIGRATIONS := persistence/sqlite/migration
POSTGRES_MIGRATIONS := persistence/postgres/migration

.PHONY: help test test/postgres bench generate verify lint example

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_/-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

test: ## Run every test with the race detector (PostgreSQL and Redis tests skip without their env vars)
	$(GO) test -race -count=1 ./...

test/postgres: ## Run the PostgreSQL backend tests and the SDK suite on $STENT_TEST_POSTGRES
	@if [ -z "$${STENT_TEST_POSTGRES:-}" ]; then \
		echo "set STENT_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable" >&2; exit 2; fi
	$(GO) test -race -count=1 ./persistence/postgres/...
	$(GO) test -race -count=1 -run '^TestSuiteOnPostgres$$' ./sdk/

bench: ## Run the SDK benchmarks on SQLite (5 iterations each)
	$(GO) test -run '^$$' -bench . -benchtime 5x ./sdk/

generate: ## Regenerate messages/*.pb.go (needs protoc and protoc-gen-go, see messages/README.md)
	$(GO) generate ./messages

verify: ## Check that generated code is current and migration names match across dialects
	@command -v protoc >/dev/null || { echo "protoc not found; see messages/README.md" >&2; exit 2; }
	@command -v protoc-gen-go >/dev/null || { echo "protoc-gen-go not found; see messages/README.md" >&2; exit 2; }
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for proto in messages/*.proto; do \
		protoc -I messages --go_out="$$tmp" --go_opt=paths=source_relative "$$proto"; \
		gen="$$(basename "$$proto" .proto).pb.go"; \
		if ! diff -u "messages/$$gen" "$$tmp/$$gen"; then \
			echo "messages/$$gen is not current: run make generate" >&2; exit 1; fi; \
	done; \
	echo "generated code is current"
	@if [ -d $(SQLITE_MIGRATIONS) ] && [ -d $(POSTGRES_MIGRATIONS) ]; then \
		if ! diff -u <(cd $(SQLITE_MIGRATIONS) && ls) <(cd $(POSTGRES_MIGRATIONS) && ls); then \
			echo "migration file names differ between $(SQLITE_MIGRATIONS) and $(POSTGRES_MIGRATIONS)" >&2; exit 1; fi; \
		echo "migration names match"; \
	fi

lint: ## gofmt -l (hand-written files), go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:" >&2; echo "$$unformatted" >&2; exit 1; fi
	$(GO) vet ./...
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$$($(GO) env GOPATH)/bin/staticcheck ./...

example: ## Run the quick example (examples/simple_flow, on ./workflow.db)
	$(GO) run ./examples/simple_flow
