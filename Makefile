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
# SIP signalling: sipp UAC -> `palisade run` (setup defaults) and -> Kamailio + rtpengine
# -> sipp UAS over UDP at RATES (default 500..3000 calls/s, DURATION s each), then the
# B2BUA alone for reference, UDP -> TLS -> Kamailio and memory per call through
# palisade run (bench/sip; BENCH_BOOST=1 on a shared machine, see RESULTS.md).
bench-sip:
	bash bench/sip/run.sh

# Media relay against rtpengine doing the same work (plain RTP inside, SRTP with SDES
# outside), the same generator, one after the other, at CALLS_LIST calls (default
# 100,500,1000), relay pinned to CPU 0 and generator to CPU 1; RESULT lines with the
# run's LoopbackFloor go to BENCH_OUT, bench/plot prints the ratios and the SVG (bench/media).
CALLS_LIST ?= 100,500,1000
bench-media:
	$(GO) build -o bin/bench-media ./bench/media
	log=$(or $(BENCH_OUT),/tmp/bench-runs)/bench-media-$$(date +%Y%m%d-%H%M%S).log; mkdir -p $$(dirname $$log) && \
	bin/bench-media -relays palisade,rtpengine -calls-list $(CALLS_LIST) -pin \
		-duration $(or $(DURATION),10s) -log $$log $(BENCH_MEDIA_FLAGS); rc=$$?; \
	$(GO) run ./bench/plot -media $$log -svg docs/bench-media.svg; exit $$rc

# Every native fuzz target in the repository (found by its `func FuzzXxx`
# line, so new targets join by themselves) runs for FUZZTIME in turn, with
# FUZZPARALLEL workers; the failures are listed at the end (a crash leaves
# its input in the package's testdata/fuzz/, which makes it a regression
# test). FUZZMATCH (an extended regexp on "./pkg/dir:FuzzName") picks some
# targets only. FUZZLOG, when set, is a directory that gets each target's
# output and a summary line per target (fuzz time, wall seconds with the
# build, execs).
#
# FUZZMINTIME bounds the minimizing of each new interesting input. Go's
# default (60 s each) made the targets that take whole configuration
# documents (kilobytes; minimizing is quadratic in the size) spend their
# whole run minimizing: 14-32 executions counted per minute instead of
# thousands per second.
#
# A run that ends with only "context deadline exceeded" and no failing
# input is Go's own race at the -fuzztime deadline, not a finding (Go 1.26's
# internal/fuzz compares the error with the workers' context before that
# context is cancelled; go.dev/issue/75804, fixed in Go 1.27): it is
# reported and not counted.
FUZZTIME     ?= 30s
FUZZMINTIME  ?= 1s
FUZZPARALLEL ?= 1
FUZZLOG      ?=
FUZZMATCH    ?= .
fuzz:
	@failed=""; n=0; out=$$(mktemp); \
	if [ -n "$(FUZZLOG)" ]; then mkdir -p "$(FUZZLOG)"; fi; \
	for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		d=$$(dirname $$f); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "$$d:$$fn" | grep -Eq '$(FUZZMATCH)' || continue; \
			n=$$((n+1)); echo "== $$d $$fn ($(FUZZTIME))"; start=$$(date +%s); \
			{ $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) \
				-parallel $(FUZZPARALLEL) $$d 2>&1; echo $$? > $$out.rc; } | tee $$out; rc=$$(cat $$out.rc); \
			secs=$$(( $$(date +%s) - start )); \
			execs=$$(grep -o 'execs: [0-9]*' $$out | tail -1 | cut -d' ' -f2); \
			if [ $$rc -ne 0 ] && grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
				echo "fuzz: $$d $$fn: Go's -fuzztime deadline race (go.dev/issue/75804), no failing input: not a finding"; rc=0; \
			fi; \
			if [ -n "$(FUZZLOG)" ]; then \
				cp $$out "$(FUZZLOG)/$$(echo $$d | tr / _ | sed 's/^\._//')_$$fn.log"; \
				echo "$$d $$fn rc=$$rc fuzztime=$(FUZZTIME) seconds=$$secs execs=$${execs:-0}" >> "$(FUZZLOG)/summary.txt"; \
			fi; \
			[ $$rc -eq 0 ] || failed="$$failed $$d:$$fn"; \
		done; \
	done; \
	rm -f $$out $$out.rc; \
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
