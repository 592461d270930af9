# Palisade build, run and test entry points.
GO      ?= go
PKG     := github.com/palisade-sbc/palisade
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X $(PKG)/internal/unit.version=$(VERSION) -X $(PKG)/internal/unit.commit=$(COMMIT)
DATA    ?= ./palisade-data

.PHONY: build run test vet fmt-check ci bench-sip bench-media fuzz soak clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/palisade ./cmd/palisade

run: build
	bin/palisade run --data $(DATA)

# Installs the Debian test peers when missing (needs root for that; without
# root it only says what is missing), then runs every test.
test:
	bash scripts/install-test-peers.sh
	$(GO) test -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*'))" || { echo "gofmt could not read every file"; exit 1; }; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

ci:
	bash .ci/run

# Benchmarks and long runs; their owners fill these in.
# SIP signalling: sipp UAC -> Palisade -> sipp UAS (UDP) and -> TLS -> Kamailio (bench/sip).
bench-sip:
	bash bench/sip/run.sh

# Media relay: CALLS concurrent calls, plain RTP inside / SRTP outside (bench/media).
bench-media:
	$(GO) build -o bin/bench-media ./bench/media
	bin/bench-media -calls $(or $(CALLS),1000) -duration $(or $(DURATION),15s) $(BENCH_MEDIA_FLAGS)

# Every native fuzz target in the repository (found by its `func FuzzXxx`
# line, so new targets join by themselves) runs for FUZZTIME in turn; the
# failures are listed at the end (a crash leaves its input in the package's
# testdata/fuzz/, which makes it a regression test).
FUZZTIME ?= 30s
fuzz:
	@failed=""; n=0; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		d=$$(dirname $$f); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			n=$$((n+1)); echo "== $$d $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$d || failed="$$failed $$d:$$fn"; \
		done; \
	done; \
	echo "fuzz: $$n targets, $(FUZZTIME) each"; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi

# Soak: sipp calls at SOAK_RATE (default 1000/s, half the bench-sip
# capacity) through the unit for SOAK_DURATION with bad traffic mixed in;
# samples RSS, goroutines and fds, reports failed calls (bench/soak).
SOAK_DURATION ?= 30m
soak: build
	$(GO) run ./bench/soak -bin bin/palisade -duration $(SOAK_DURATION) $(SOAK_FLAGS)

clean:
	rm -rf bin
