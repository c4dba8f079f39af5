# Two commands on a fresh machine: `make serve` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# cpu: tensorflow-cpu; use EXTRAS=gpu,train,dev on a CUDA machine (never both cpu and gpu).
EXTRAS ?= cpu,train,dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# The exact version of every dependency (`make lock` writes it); the Dockerfile and CI use it too.
CONSTRAINTS := constraints.txt
IMDB ?= ../shared/data/imdb

.PHONY: install serve test lint pytest train bench clean lock

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade -c $(CONSTRAINTS) pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP) ## create .venv and install the project with its extras

serve: $(STAMP) ## serve the bundled default model on $SENTIMENT_PORT (default 8000)
	$(BIN)/sentiment-serve

test: lint pytest test-slow deploy-check ## lint, type-check, the test suite, short load/fault runs, deployment checks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The options live in the recipe (training/recipes/default.toml), which the training Job
# (k8s/training/job.yaml) uses too; only data paths and the output are given here.
RECIPE ?= default
TRAIN_OUT ?= models/default
train: $(STAMP) ## reproduce models/default from the IMDB files in $(IMDB) (recipe: RECIPE=default)
	$(BIN)/sentiment-train --config $(RECIPE) \
		--train $(IMDB)/train.jsonl.gz --val $(IMDB)/val.jsonl.gz \
		--pretrain-unlabelled $(IMDB)/unsup.jsonl.gz --out $(TRAIN_OUT)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# After changing dependencies in pyproject.toml: `make lock UPGRADE=1` upgrades .venv to the
# newest versions pyproject.toml allows (network: PyPI), then writes them to $(CONSTRAINTS).
lock: ## rewrite constraints.txt from what .venv has installed (UPGRADE=1: upgrade it first)
	@test -x $(BIN)/python || { echo "make lock: no $(VENV): run make install first" >&2; exit 1; }
ifeq ($(UPGRADE),1)
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager pip -e ".[cpu,train,dev]"
endif
	$(BIN)/python .ci/lock_constraints.py --output $(CONSTRAINTS)

.PHONY: deploy-check
deploy-check: ## offline checks of Dockerfile and k8s/ (own tools in .venv-deploy; no Docker, no cluster)
	bash .ci/deploy-checks.sh

# The peers (LitServe, BentoML) run from their own venv, so
# they never enter the service's dependencies; same TensorFlow as the service.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[cpu,bench]" \
		"$$(grep -i '^tensorflow-cpu==' $(CONSTRAINTS))"
	touch $@

bench: $(STAMP) $(BENCH_STAMP) ## throughput: model limit, service, HTTP ceiling, naive, peers (bench/results/latest.*)
	$(BIN)/python -m bench.run --data $(IMDB)/val.jsonl.gz --bench-venv $(BENCH_VENV)

.PHONY: test-slow audit
# Short by default (~2 min); e.g. `make test-slow RELIABILITY_SOAK_S=180` for a longer soak.
RELIABILITY_SOAK_S ?= 30
RELIABILITY_OVERLOAD_S ?= 5
RELIABILITY_FAULT_LOAD_S ?= 3
test-slow: $(STAMP) ## soak, overload, SIGKILL/SIGTERM under load (tests marked slow)
	RELIABILITY_SOAK_S=$(RELIABILITY_SOAK_S) RELIABILITY_OVERLOAD_S=$(RELIABILITY_OVERLOAD_S) \
	RELIABILITY_FAULT_LOAD_S=$(RELIABILITY_FAULT_LOAD_S) $(BIN)/pytest -m slow -rP tests/reliability

# pip-audit of every package pinned in $(CONSTRAINTS) against an advisory service (network:
# PyPI's per-release JSON API, or AUDIT_SERVICE=osv). It prints which packages it checked and
# which it could not (and why), and fails unless every one was checked and none is vulnerable.
AUDIT_SERVICE ?= pypi
audit: $(STAMP) ## pip-audit of every pinned dependency; says what it could not check
	$(BIN)/python .ci/audit.py --constraints $(CONSTRAINTS) --service $(AUDIT_SERVICE)
