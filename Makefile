# nanokube — see README.md.
SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
LDFLAGS  := -s -w -X github.com/nanokube/nanokube/version.Version=$(VERSION)
# Build tags that leave out code nanokube never calls: urfave/cli's man and
# markdown generators (go-md2man, blackfriday) and gRPC's x/net/trace pages
# (html/template). Fewer packages, fewer init functions touching pages of the
# binary at every start (docs/DESIGN.md § Memory at idle).
TAGS     := urfave_cli_no_docs,grpcnotrace
PKGS     := ./...
E2E_TIMEOUT ?= 40m

.PHONY: build install deps test unit e2e bench lint clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/nanokube ./cmd/nanokube

install: build
	install -m 0755 bin/nanokube /usr/local/bin/nanokube

deps:
	./install.sh --deps-only

# Every test: lint, unit tests (root tests included when run as root) and the
# end-to-end suite against the real binary, containerd and kubectl.
test: deps lint unit e2e

unit:
	$(GO) test -count=1 -timeout 15m $(PKGS)
	@# The patched copies in third_party/ (their own modules, outside ./...).
	$(GO) test -count=1 github.com/urfave/cli/v2 github.com/google/go-cmp/cmp/internal/value

e2e: build
	NANOKUBE_BINARY=$(CURDIR)/bin/nanokube $(GO) test -count=1 -tags e2e -timeout $(E2E_TIMEOUT) -v ./e2e/

bench: build
	$(GO) run ./hack/bench -binary bin/nanokube -out bench-report.json

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./e2e/
	GOOS=darwin $(GO) build ./cmd/nanokube ./cluster/ ./version/
	@# No reachable dynamic method lookup (text/template & co.): it makes the
	@# linker keep every exported method, 62 -> 89 MB (third_party/README.md).
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS) -ldflags=-dumpdep -o /dev/null ./cmd/nanokube 2>&1 | $(GO) run ./hack/reflectmethod

clean:
	rm -rf bin bench-report.json
