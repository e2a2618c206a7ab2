# Every target creates (or reuses) the pinned environment itself: see tools/setup_env.sh.
SHELL := /bin/bash
RUN := tools/in_env.sh

.PHONY: env test test-fast lint demo clean-demo gpu-bundle gpu-check-dry-run
env:
	@tools/setup_env.sh >/dev/null

lint:
	@$(RUN) bash -c 'flake8 backbones tools tests configs && isort --check-only --diff backbones tools tests configs'

# The suite runs mostly one core's worth of Python: one pytest-xdist worker per core, each
# test file on one worker (module fixtures are built once).
TEST_WORKERS ?= 2
test:
	@$(RUN) bash -c 'flake8 backbones tools tests configs && isort --check-only --diff backbones tools tests configs && pytest -n $(TEST_WORKERS) --dist loadfile'

test-fast:
	@$(RUN) pytest -m "not slow"

demo:
	@$(RUN) python tools/demo.py

clean-demo:
	rm -rf work_dirs/demo data/shapes

# What tools/gpu/gpu_check.sh needs on an offline GPU machine (wheels + mmcv source, < 64 MiB).
gpu-bundle:
	@$(RUN) python tools/gpu/prepare_bundle.py --out gpu_bundle

gpu-check-dry-run: gpu-bundle
	@$(RUN) tools/gpu/gpu_check.sh --dry-run --bundle gpu_bundle
