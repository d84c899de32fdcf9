# The README's two commands:  `make demo`  and  `make test`.
# Both create .venv when it is missing and install edgefer into it.
#
# PIP_CONFIG_FILE=/dev/null: torchvision has no CPU build on PyPI, so torch must come from PyPI
# too (its CUDA build runs fine on a CPU). A site pip.conf that points at a local CPU-only torch
# wheel would pair it with a CUDA torchvision that cannot load its operators.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_ENV := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS=
SHARED ?= ../shared
VIDEO ?= $(SHARED)/data/videos/WolfgangLanger_Pexels.mp4
OUT ?= out
# With a display the OpenCV window shows the result too; without one the run is headless.
HEADLESS := $(if $(DISPLAY),,--headless)
export EDGEFER_DATA ?= $(abspath $(SHARED)/data)

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_ENV) $(PY) -m pip install --upgrade pip
	$(PIP_ENV) $(PY) -m pip install -e '.[all]'
	touch $@

venv: $(VENV)/.installed

# Set up and run the main job: the shipped model on VIDEO (or a camera: VIDEO=0), headless when
# there is no display, writing the annotated video and the per-face CSV under OUT.
demo: venv
	$(VENV)/bin/edgefer run --source '$(VIDEO)' $(HEADLESS) --record $(OUT)/annotated.mp4 --csv $(OUT)/faces.csv

# The house rules that check themselves (configured in pyproject.toml): ruff (lint), mypy (types)
# and import-linter (layering) on edgefer/, ui/, train/ and export/ (mypy's and import-linter's scope
# is in pyproject.toml). Each exits non-zero on a finding; .ci/run runs this before the tests.
lint: venv
	$(VENV)/bin/ruff check edgefer ui train export
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Set up and run the tests (the command .ci/run calls).
test: venv
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) $(OUT)

# Does every base dependency have a wheel for JetPack 6's Python (3.10, aarch64)? Asks PyPI with
# `pip download --platform ... --only-binary=:all:` (network, no emulation; not part of `make test`).
# The last result is recorded in docs/jetson.md. Wheels land in /tmp/wheels_aarch64, never the repo.
.PHONY: jetson-wheels
jetson-wheels: venv
	$(PIP_ENV) $(PY) export/jetson_wheels.py --with-deps --json $(OUT)/jetson_wheels.json

# Long training runs outlast a session (a machine keeps no files between sessions), so what an
# unfinished run needs to continue (last.pt, history, config) is committed under train/long_runs/<run>/
# at the end of a session and restored at the start of the next (train/long_runs.py says what is kept).
LONG_RUNS ?= fer2013_edge2_au fer2013_edge2_baseline
ABLATION ?= configs/train/ablation/fer2013_recipe.yaml
ABLATION_RUNS ?= $(addprefix ablation/fer2013_recipe/,base label_smoothing mixup_cutmix ema camera all)
.PHONY: long-runs-save long-runs-restore long-runs-resume

long-runs-save: venv
	$(PY) -m train.long_runs save $(LONG_RUNS) $(ABLATION_RUNS)

long-runs-restore: venv
	$(PY) -m train.long_runs restore $(LONG_RUNS) $(ABLATION_RUNS)

# Continue the long runs and the ablation in the background at low priority (one core each; logs in
# runs/*.out). Stop with `pkill -TERM -f "edgefer (train|ablate)"` (each run saves last.pt), then
# `make long-runs-save` and commit.
long-runs-resume: long-runs-restore
	@mkdir -p runs
	@for r in $(LONG_RUNS); do \
	  if [ -f runs/$$r/last.pt ]; then nohup nice -n 5 $(VENV)/bin/edgefer train --out runs/$$r --resume run.progress=false >> runs/$$r.out 2>&1 & \
	  else nohup nice -n 5 $(VENV)/bin/edgefer train --config configs/train/$$r.yaml run.progress=false >> runs/$$r.out 2>&1 & fi; \
	  echo "training runs/$$r in the background (log runs/$$r.out)"; \
	done
	nohup nice -n 5 $(VENV)/bin/edgefer ablate --plan $(ABLATION) --jobs 1 >> runs/ablation.out 2>&1 &
