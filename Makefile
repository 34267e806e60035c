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

.DEFAULT_GOAL := help
.PHONY: help build test fmt lint run bench services-start services-stop up down status logs check-artifacts

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

build: ## Build every crate (debug)
	$(CARGO) build --workspace

# Installs what is missing, starts the test servers (S3, RabbitMQ, Redis) on private ports, runs the
# whole suite against them, and stops them again whatever happens; the suite's exit code is kept.
test: ## Install missing dependencies, start the test servers, run all tests, stop the servers
	scripts/install-deps.sh
	trap 'scripts/test-services.sh stop' EXIT; \
	eval "$$(scripts/test-services.sh start)"; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run $(TEST_ARGS) --no-fail-fast; \
	else \
		$(CARGO) test $(TEST_ARGS) --no-fail-fast; \
	fi
	scripts/check-artifacts.sh

fmt: ## Format all code
	$(CARGO) fmt --all

lint: ## Clippy on every target, warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

run: ## Build, write a sample dataset when ./data/events is empty, serve it on :5050
	scripts/run.sh

bench: ## Release benchmarks: raw scans and rollups against DuckDB, ingestion, relay, monitor (tables)
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

check-artifacts: ## Check deploy/, k8s/, helm/ offline and run the make-up end-to-end test
	scripts/check-artifacts.sh
