# devbox: `make up` and `make test` do all set-up on a fresh Debian/Ubuntu host as root;
# `make up` as an ordinary user runs devbox rootless, or prints the sudo lines it needs.

GO        ?= go
BIN       := bin/devbox
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# Host packages devbox needs to run (as root; rootless), and what the tests need on top.
HOST_PKGS := debootstrap nftables iproute2 xz-utils ca-certificates
ROOTLESS_PKGS := uidmap passt
TEST_PKGS := $(HOST_PKGS) $(ROOTLESS_PKGS) iptables openssh-client openssh-server sshpass runc bubblewrap git \
             dropbear-bin putty-tools python3-paramiko python3-asyncssh ansible-core rsync sshfs busybox-static podman \
             docker.io docker-compose
BENCH_PKGS := $(TEST_PKGS) hyperfine

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build up test test-v2vm vet lint fmt-check fuzz-short bench host-deps test-deps bench-deps clean

all: build

# Beside devbox: devbox-compose reads compose files and devbox-kube writes
# Kubernetes manifests (see cmd/devbox-compose, cmd/devbox-kube).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/devbox
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)-compose ./cmd/devbox-compose
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)-kube ./cmd/devbox-kube

host-deps:
	@if [ "$$(id -u)" = 0 ]; then scripts/apt-ensure $(HOST_PKGS); else scripts/rootless-check $(ROOTLESS_PKGS); fi

test-deps:
	@scripts/apt-ensure $(TEST_PKGS)

bench-deps:
	@scripts/apt-ensure $(BENCH_PKGS)

# Bring up this repository's own development environment (devbox.toml).
up: host-deps build
	$(BIN) up -f devbox.toml

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: test-deps fmt-check vet lint build
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz-short
	$(MAKE) test-v2vm

# The fuzzers (spec decoder, layer extractor, authorized_keys parser,
# Dockerfile planner),
# briefly: their corpora run in `go test` above; this looks a little further.
# Budgets are counts of inputs, not durations: Go 1.26's coordinator can fail
# a -fuzztime=10s run with "context deadline exceeded" when a worker is still
# mid-batch at the deadline (go.dev/issue/75804, fixed in 1.27). A count has
# no deadline to race. Each is a few seconds here.
FUZZ_SPEC ?= 100000x
FUZZ_KEYS ?= 100000x
FUZZ_EXTRACT ?= 10000x
FUZZ_DOCKERFILE ?= 10000x
fuzz-short:
	$(GO) test -run='^$$' -fuzz='^FuzzParseSpec$$' -fuzztime=$(FUZZ_SPEC) ./devenv/spec
	$(GO) test -run='^$$' -fuzz='^FuzzParseAuthorizedKeys$$' -fuzztime=$(FUZZ_KEYS) ./devenv/spec
	$(GO) test -run='^$$' -fuzz='^FuzzExtract$$' -fuzztime=$(FUZZ_EXTRACT) ./rootfs
	$(GO) test -run='^$$' -fuzz='^FuzzDockerfilePlan$$' -fuzztime=$(FUZZ_DOCKERFILE) ./devenv/builder

# The runtime and lifecycle tests again in a cgroup-v2-only VM with Debian
# 12's kernel 6.1 and a session-scope cgroup (scripts/test-v2vm).
test-v2vm:
	scripts/test-v2vm

bench: bench-deps build
	bench/run.sh

clean:
	rm -rf bin
