# Pool Selector: everyday commands. `make help` lists them.
#
# Cargo honours CARGO_TARGET_DIR when it is set; TARGET_DIR is the same folder for recipes that need
# a built binary's path.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# What `make test` runs, e.g. `make test TEST_ARGS="-p event-generator"`.
TEST_ARGS ?= --workspace
# `make test FUZZ=0` leaves out the schema fuzzing step (scripts/fuzz.sh); `BENCH_SMOKE=0` the smoke run
# of every benchmark part (load-test/bench.sh with tiny sizes on the test build's binaries).
FUZZ ?= 1
BENCH_SMOKE ?= 1

.DEFAULT_GOAL := help
.PHONY: help build build-time test python-tests fuzz fmt lint run bench services-start services-stop up down status logs check-artifacts load chaos demo scale-demo compose spark-image

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

build: ## Build every crate (debug)
	$(CARGO) build --workspace

# Installs what is missing, starts the test servers (S3, RabbitMQ, Redis) on private ports, runs the
# whole suite against them, then, while they still run, fuzzes every HTTP service's OpenAPI document
# (scripts/fuzz.sh) and runs every benchmark part once with tiny sizes (a part that cannot start fails
# the suite), all with the debug binaries the test build just made, and stops them again whatever
# happens; then the artifact checks and the `make up` stack test, on the same debug binaries. Nothing is
# built in release.
test: ## Install missing dependencies, start the test servers, run all tests and the API fuzzer, stop the servers
	scripts/install-deps.sh
	trap 'scripts/test-services.sh stop' EXIT; \
	eval "$$(scripts/test-services.sh start)"; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run $(TEST_ARGS) --no-fail-fast; \
	else \
		$(CARGO) test $(TEST_ARGS) --no-fail-fast; \
	fi; \
	if [[ "$(FUZZ)" != 0 ]]; then FUZZ_PROFILE=debug scripts/fuzz.sh; fi; \
	if [[ "$(BENCH_SMOKE)" != 0 ]]; then BENCH_SMOKE=1 load-test/bench.sh; fi
	$(MAKE) --no-print-directory python-tests
	STACK_PROFILE=debug STACK_BUILD=missing scripts/check-artifacts.sh

# The Python tools' own logic, without servers: the load ramp's shape and report and the benchmark
# statistics (load-test/) and the scale demo's load and watch (scripts/). The repo venv's Python when there is one (it has locust and
# matplotlib, so the locustfile and chart checks run too), else python3.
python-tests: PY := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
python-tests: ## Unit tests of the Python tools (ramp load shape and report, bench statistics, scale demo): no servers
	$(PY) -m unittest discover -s load-test -p 'test_*.py'
	$(PY) -m unittest discover -s scripts -p 'test_*.py'

# Builds the binaries (release unless FUZZ_PROFILE=debug), starts the test servers unless they already
# run (and then stops only what it started), and fuzzes each HTTP service. `make fuzz S="relay monitor"`
# fuzzes only those; FUZZ_MAX_EXAMPLES, FUZZ_SEED, FUZZ_CHECKS: see scripts/fuzz.sh.
fuzz: FUZZ_PROFILE ?= release
fuzz: ## Fuzz every HTTP service's /openapi.json with schemathesis against the test servers
	$(CARGO) build $(if $(filter release,$(FUZZ_PROFILE)),--release) --workspace --bins
	started=""; \
	if ! scripts/test-services.sh status >/dev/null 2>&1; then started=1; fi; \
	trap 'if [[ -n $$started ]]; then scripts/test-services.sh stop; fi' EXIT; \
	eval "$$(scripts/test-services.sh start)"; \
	FUZZ_PROFILE=$(FUZZ_PROFILE) scripts/fuzz.sh $(S)

fmt: ## Format all code
	$(CARGO) fmt --all

lint: ## Clippy on every target, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

run: ## Build, write a sample dataset when ./data/events is empty, serve it on :5050
	scripts/run.sh

build-time: ## From a fresh clone: cold `make run` to its first answer, and after touching one file (BUILD_TIME_TEST=1: make test's build too): build-times.md
	scripts/build-time.sh

bench: ## Release benchmarks: raw scans and rollups against DuckDB, ranking regret and latency, ingestion, relay, monitor (tables)
	load-test/bench.sh

services-start: ## Start the test servers and print their env (eval "$(make -s services-start)")
	@scripts/test-services.sh start

services-stop: ## Stop the test servers
	@scripts/test-services.sh stop

up: ## Start the whole stack as local processes (RabbitMQ, Redis, S3, Prometheus, every service)
	scripts/stack.sh up

down: ## Stop exactly what `make up` started
	scripts/stack.sh down

status: ## Show the local stack's processes and URLs
	scripts/stack.sh status

logs: ## Tail the local stack's logs (make logs C=relay for one component)
	scripts/stack.sh logs $(C)

load: ## Locust read, write and mixed scenarios against `make up` (LOAD_DURATION s each, default 60; LOAD_SCENARIOS=ramp: 0 → 500 req/s): reports/load/load-report.md
	load-test/load.sh

chaos: ## Chaos Toolkit experiments under the mixed load (needs STACK_CHAOS=1 make up, or starts one): reports/chaos/chaos-report.md
	chaos/run.sh

# Needs `make up` running and a built launcher; starts its own launcher (simulated runs) beside the stack,
# DEMO_LAUNCHES launches per arm (default 60): scripts/demo.sh.
demo: ## The launcher's loop on the local stack: default strategy vs naive, regret and pool shares plotted
	scripts/demo.sh

# Needs `make up` running; restarts ingest-worker (simulated work per message) and the monitor, posts a
# backlog through the intake, then restores them: scripts/scale-demo.sh.
scale-demo: ## On `make up`: a backlog through the intake and the monitor's desired worker scale rising and falling
	scripts/scale-demo.sh

check-artifacts: ## Check deploy/, k8s/, helm/ offline and run the make-up end-to-end test
	scripts/check-artifacts.sh

# The whole stack in containers from the repository root (docker-compose.yml includes
# deploy/docker-compose.yml): scripts/compose-env.sh writes .env with random secrets on first use (never
# overwriting one), then compose starts everything in the background. Needs a Docker engine.
compose: ## Write .env with random secrets if missing, then `docker compose up -d` (needs Docker)
	scripts/compose-env.sh
	docker compose up -d --build

# The Spark job image deploy/launch-templates/*.yaml name (spec.image); push it to your registry and name
# that image in the templates. scripts/check-artifacts.sh checks that this tag is the templates' image.
spark-image: ## Build the Spark job image the launch templates name (PySpark 3.5.3 + the job files; needs Docker)
	docker build -t pool-selector-platform/spark-jobs:3.5.3 deploy/spark-job
