# Two commands: `make run` (set up, ingest the samples, open the chat UI) and `make test` (set up, run every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python is a source build; this CPU reports AMX, and a native build crashes, so build portably.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test setup setup-test ingest-sample ask chroma eval compare heldout fit-policy bench bench-quick clean-index

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# CPU torch first, pinned: anything newer pulls several GB of CUDA packages.
$(VENV)/.base-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.base-installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[llm,test]'
	touch $@

setup: $(VENV)/.base-installed

setup-test: $(VENV)/.test-installed

ingest-sample: setup
	$(BIN)/python -m ingest data/sample --quiet

run: ingest-sample
	$(BIN)/python app.py

test: setup-test
	$(BIN)/python -m pytest

ask: ingest-sample
	$(BIN)/python -m rag ask "When does the ICO handle rectification?"

# A real Chroma server on loopback with its own data folder (see bench/README.md "Embedded, server, distributed").
# Then, in another shell, the app, ingest and eval use it with one setting: OMBUDS_CHROMA_URL=http://127.0.0.1:8000
chroma: setup
	$(BIN)/chroma run --path data/chroma-server --host 127.0.0.1 --port 8000

# Every evaluation indexes the whole fictional archive (171 decisions): questions are asked of all of it.
EVAL_CORPUS := data/sample eval/corpus/dev eval/corpus/test eval/corpus/archive

eval: setup
	$(BIN)/python -m eval run --gold eval/gold/dev.jsonl --corpus $(EVAL_CORPUS) --out reports/latest

compare: setup
	$(BIN)/python -m eval compare --gold eval/gold/dev.jsonl --corpus $(EVAL_CORPUS) --out reports/compare

# The test split (eval/gold/test.jsonl, 118 questions): report it, never tune on it.
heldout: setup
	$(BIN)/python -m eval compare --gold eval/gold/test.jsonl --corpus $(EVAL_CORPUS) --out reports/heldout

# Refit the answer-or-decline model on the dev split only (writes rag/models/relevance.json).
fit-policy: setup
	$(BIN)/python -m eval fit-policy --fit eval/gold/dev.jsonl --corpus $(EVAL_CORPUS) --version relevance-2 \
		--out rag/models/relevance.json

# Ingest throughput (this pipeline vs the raw encoder vs naive LangChain) and query latency at 10k/100k chunks,
# on SYNTHETIC decisions; JSON into bench/results, table on stdout (bench/README.md). About 15 min on 2 idle cores.
bench: setup
	$(BIN)/python -m bench run --out bench/results

bench-quick: setup
	$(BIN)/python -m bench run --quick --out /tmp/ombuds-bench-quick

clean-index:
	rm -rf data/index

# The decisions browser at archive size: 50 000 SYNTHETIC decisions written as catalog rows (no vectors), then
# searches and page changes timed through the app's code; JSON naming the CPU into bench/results (about 4 min).
.PHONY: bench-browse
bench-browse: setup
	$(BIN)/python -m bench browse --n 50000 --rounds 5 --out bench/results

# A local cluster on loopback (deploy/cluster.py): PostgreSQL (data/cluster/postgres) and a Chroma server, one
# ingest of the samples, then two app instances over them; prints the addresses. Ports are chosen free unless
# given: make cluster APP_PORTS=7861,7862 PG_PORT=5433 CHROMA_PORT=8001. A second make cluster reports the
# running one. make cluster-stop ends exactly what it started (the data stays in data/cluster).
.PHONY: cluster cluster-stop cluster-status bench-cluster
CLUSTER_ARGS = $(if $(APP_PORTS),--app-ports $(APP_PORTS)) $(if $(PG_PORT),--postgres-port $(PG_PORT)) \
	$(if $(CHROMA_PORT),--chroma-port $(CHROMA_PORT)) $(if $(INSTANCES),--instances $(INSTANCES))
cluster: setup
	$(BIN)/python -m deploy start $(CLUSTER_ARGS)

cluster-stop:
	$(BIN)/python -m deploy stop

cluster-status:
	$(BIN)/python -m deploy status

# The load client against every instance of the running cluster (sessions spread round-robin over them).
# LOAD_SESSIONS/LOAD_SECONDS default to the single-instance measurement's 20 x 60 s; JSON into bench/results
# (LOAD_OUT=path to put it elsewhere).
LOAD_SESSIONS ?= 20
LOAD_SECONDS ?= 60
LOAD_OUT ?= bench/results/load-cluster-$(shell date -u +%Y%m%d-%H%M%S).json
bench-cluster: setup
	@urls="$$($(BIN)/python -m deploy urls)" || { echo "start the cluster first: make cluster" >&2; exit 2; }; \
	set -x; $(BIN)/python -m bench load $$(printf -- '--url %s ' $$urls) --sessions $(LOAD_SESSIONS) \
		--seconds $(LOAD_SECONDS) --out $(LOAD_OUT)
