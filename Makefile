# Two commands on a fresh machine: `make serve` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# cpu: tensorflow-cpu; use EXTRAS=gpu,train,dev on a CUDA machine (never both cpu and gpu).
EXTRAS ?= cpu,train,dev
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma := ,
IMDB ?= ../shared/data/imdb

.PHONY: install serve test lint pytest train bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
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

train: $(STAMP) ## reproduce models/default from the IMDB files in $(IMDB)
	$(BIN)/sentiment-train --train $(IMDB)/train.jsonl.gz --val $(IMDB)/val.jsonl.gz \
		--out models/default --name sentiment --label-names 0=negative,1=positive \
		--num-words 20000 --maxlen 400 --embedding-dim 64 --units 64 --epochs 8 \
		--ngram-buckets 131072 --ngram-dim 16 --pretrain-unlabelled $(IMDB)/unsup.jsonl.gz --baseline

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

.PHONY: deploy-check
deploy-check: ## offline checks of Dockerfile and k8s/ (own tools in .venv-deploy; no Docker, no cluster)
	bash .ci/deploy-checks.sh

bench: $(STAMP) ## throughput: model limit vs service vs naive Flask (bench/results/latest.*)
	$(BIN)/python -m bench.run --data $(IMDB)/val.jsonl.gz

.PHONY: test-slow audit
# Short by default (~2 min); e.g. `make test-slow RELIABILITY_SOAK_S=180` for a longer soak.
RELIABILITY_SOAK_S ?= 30
RELIABILITY_OVERLOAD_S ?= 5
RELIABILITY_FAULT_LOAD_S ?= 3
test-slow: $(STAMP) ## soak, overload, SIGKILL/SIGTERM under load (tests marked slow)
	RELIABILITY_SOAK_S=$(RELIABILITY_SOAK_S) RELIABILITY_OVERLOAD_S=$(RELIABILITY_OVERLOAD_S) \
	RELIABILITY_FAULT_LOAD_S=$(RELIABILITY_FAULT_LOAD_S) $(BIN)/pytest -m slow -rP tests/reliability

# Needs PyPI's per-release JSON API (the advisory data): --strict fails on any package it could
# not check, so an unreachable service is a failure, never a silent pass.
audit: $(STAMP) ## pip-audit of every installed dependency (network: PyPI)
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off --desc on || { \
		echo "make audit: FAILED: known vulnerabilities, or packages that could not be checked (see above)" >&2; \
		exit 1; }
