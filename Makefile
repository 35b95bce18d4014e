# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv web bench results clean browser

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: anything looser pulls gigabytes of CUDA packages here
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) scripts/demo.py --out out/demo

# The web tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 >/dev/null) || \
	  echo "WARNING: could not install chromium: the browser tests will fail"; }

test: $(STAMP) browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q --durations=15

web: $(STAMP)
	$(VENV)/bin/unetgan web

# the Dice-per-speed-up table needs the real data; the rest runs anywhere (about 15 minutes)
bench: $(STAMP)
	$(PY) scripts/benchmark.py --out docs/benchmarks --huge $(if $(wildcard ../shared/data/manifest.csv),--manifest ../shared/data/manifest.csv)
	# what a user waits for: click-to-result through the MRML layer (first and later clicks) and the cold command line,
	# on the phantom cine and, with the real data, a Sunnybrook DICOM cine (read in place) and two translated real-image
	# Siemens stand-in cines (one M&Ms subject's ED and ES blended into 24 phases: the first dev subject and the one
	# with the median number of slices, a typical study's size) (about 8 minutes)
	$(PY) scripts/benchmark_click.py --out docs/benchmarks_click --reference $(if $(wildcard ../shared/data/manifest.csv),--dicom ../shared/data/sunnybrook/SCD0000101/dicom --standin-manifest ../shared/data/manifest.csv)
	# unetgan batch: studies per hour for 20 phantom cines, 1 and 2 workers and a 2-worker Dask cluster (about 15 minutes)
	$(PY) scripts/benchmark_batch.py --out docs/benchmarks_batch --studies 20
	# the web page under load: 3 sessions at once plus one killed mid-run (loopback, at most 15 minutes)
	OMP_NUM_THREADS=1 $(PY) scripts/benchmark_web.py --sessions 3 --budget-s 900 --out docs/web_benchmark

results: $(STAMP)
	# Dice per protocol variant and Dice and EF error per kind of heart (docs/robustness.md, a few minutes; its tables
	# are also in docs/results.md, written next)
	$(PY) scripts/robustness.py --manifest ../shared/data/manifest.csv --out docs
	$(PY) scripts/results.py --manifest ../shared/data/manifest.csv --out docs
	# how the shipped choices were made, cross-validated over the dev subjects (docs/choice_cv.md, a few minutes)
	$(PY) scripts/choice_cv.py --manifest ../shared/data/manifest.csv --out docs

clean:
	rm -rf out .pytest_cache
