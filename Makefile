# Reactive RTC in Swift: install what is missing, build, test, run.
# `make test` and `make run` work on a fresh Debian bookworm machine with the Swift toolchain (run as root).

SHELL := /bin/bash
SWIFT ?= swift
SWIFT_FORMAT := $(SWIFT) format
FORMAT_PATHS := Package.swift Sources Tests
# Serial: one test (fd reuse) dup2()s onto a descriptor number, which would race with sockets that tests running
# in parallel in the same process open; the whole suite takes about 12 s serially.
TEST_FLAGS ?= --no-parallel

# Debian packages needed to build and test (C libraries, the real servers the tests start, the clients they use).
DEB_PACKAGES := pkg-config libssl-dev libpcre2-dev librdkafka-dev libhiredis-dev liburing-dev \
	redis-server dnsmasq prometheus nginx haproxy wrk curl python3 python3-venv python3-websockets \
	procps iproute2 valgrind

.PHONY: all deps build release test test-swift test-uring test-alloc test-prebuild test-alloc-run test-k8s fuzz-smoke fuzz-long format format-check run clean help

all: build

help:
	@echo "make deps          install the Debian packages that building and testing need (skips what is present)"
	@echo "make build         debug build of every target"
	@echo "make release       release build (benchmarks use this)"
	@echo "make test          deps, build, every test (the event-loop ones on epoll and on io_uring), a short fuzz run, format check"
	@echo "make fuzz-long     every libFuzzer harness to 10,000,000 executions (Tests/Fuzz/fuzz.sh)"
	@echo "make format        format the Swift sources with the checked-in .swift-format"
	@echo "make run           build release and start the local stack with the gateway on 127.0.0.1:8080 (Ctrl-C stops it)"

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "deps: all Debian packages present"; \
	fi
	@bash k8s/deps.sh

build: deps
	$(SWIFT) build --build-tests

release: deps
	$(SWIFT) build -c release

# While the debug tests run (mostly waiting on sockets and timers), the release build of the allocation tests and
# the fuzz harnesses are built at the lowest CPU priority, in their own directories (SwiftPM locks its build
# directory): two test passes and two builds fit in the time one test pass and two builds took in turn.
test: deps build
	@mkdir -p $(RELEASE_SCRATCH); \
	nice -n 19 $(MAKE) --no-print-directory test-prebuild >$(RELEASE_SCRATCH)/prebuild.log 2>&1 & prebuild=$$!; \
	status=0; $(MAKE) --no-print-directory test-swift test-uring || status=$$?; \
	if [ $$status -ne 0 ]; then kill $$prebuild 2>/dev/null; wait $$prebuild; exit $$status; fi; \
	wait $$prebuild || { cat $(RELEASE_SCRATCH)/prebuild.log; echo "make test: the release or fuzz build failed"; exit 1; }
	$(MAKE) --no-print-directory test-alloc-run test-k8s fuzz-smoke format-check
	@echo "make test: all checks passed"

test-swift:
	$(SWIFT) test --skip-build $(TEST_FLAGS)

# The same tests again on the io_uring backend: RTC_EVENTS=io_uring puts every event loop of the test process, and of
# the programs the tests start, on it. The pure targets (codecs, parsers, the config loader, hashing) and the C-module
# checks make no event loop, so they run once, above; so does the relay floor's suite, which runs each of its own
# backends whatever RTC_EVENTS says.
PURE_TEST_TARGETS := ArchitectureTests|BenchTests|CModulesTests|DNSTests|ForwardingTests|GatewayConfigTests
PURE_TEST_TARGETS := $(PURE_TEST_TARGETS)|HTTP1Tests|JSONTests|MetricsTests|RingTests|RoutingTests|WebSocketTests|WireTests
test-uring:
	RTC_EVENTS=io_uring $(SWIFT) test --skip-build $(TEST_FLAGS) --skip '^($(PURE_TEST_TARGETS))\.|RelayToolTests'

# Zero heap allocations per request in steady state only holds for optimized code: the allocation tests run
# again on a release build (with -enable-testing, since some test targets use @testable imports). So do the handler
# lifetime tests: the loop calls handlers without retaining them, which only optimized code shows (a debug build
# retains around the call anyway).
RELEASE_SCRATCH := .build-release-tests
RELEASE_TEST_FLAGS := -c release -Xswiftc -enable-testing --scratch-path $(RELEASE_SCRATCH)
test-alloc: test-prebuild test-alloc-run

test-prebuild:
	$(SWIFT) build $(RELEASE_TEST_FLAGS) --build-tests
	bash Tests/Fuzz/fuzz.sh build

test-alloc-run:
	$(SWIFT) test $(RELEASE_TEST_FLAGS) --skip-build --filter 'AllocationTests|HandlerLifetimeTests'

test-k8s:
	bash k8s/test.sh

# libFuzzer harnesses (Tests/Fuzz): built with swiftc into .build-fuzz/, not by SwiftPM. The smoke run gives each
# harness FUZZ_SMOKE_SECONDS from its checked-in seeds; any crash or broken invariant fails it.
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_LONG_RUNS ?= 10000000
fuzz-smoke:
	SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) bash Tests/Fuzz/fuzz.sh smoke

fuzz-long:
	LONG_RUNS=$(FUZZ_LONG_RUNS) bash Tests/Fuzz/fuzz.sh long

format:
	$(SWIFT_FORMAT) format --configuration .swift-format --in-place --recursive $(FORMAT_PATHS)

format-check:
	@out=$$($(SWIFT_FORMAT) lint --strict --configuration .swift-format --recursive $(FORMAT_PATHS) 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; echo "format-check: run 'make format'"; exit 1; fi; \
	echo "format-check: clean"

# The local stack (bench/stack.sh): Redis, mock Kafka, dnsmasq, the balancer, two socket nodes, Prometheus and the
# gateway on 127.0.0.1:8080, from a release build. Ctrl-C stops everything; logs in .run/logs/.
run: release
	@bash bench/stack.sh up --bin .build/release --dir .run

clean:
	rm -rf .build .build-fuzz $(RELEASE_SCRATCH)
