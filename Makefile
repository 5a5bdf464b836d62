# eowatch: the two commands of the README, and the checks behind them.
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared/data
OUT ?= out

.PHONY: setup demo test lint typecheck evaluate bench clean

$(VENV)/.installed: pyproject.toml scripts/setup.sh scripts/setup_system.sh scripts/setup_web.sh web/package-lock.json
	bash scripts/setup.sh $(VENV)
	touch $@

setup: $(VENV)/.installed

## Set up and run the main job on the bundled real Sentinel-2 pair (Paris, OSCD).
demo: setup
	$(VENV)/bin/eowatch presets --sensor s2
	$(VENV)/bin/eowatch detect --before data/oscd-paris/imgs_1 --after data/oscd-paris/imgs_2 \
		--aoi data/oscd-paris/paris.geojson --out $(OUT)/demo
	$(VENV)/bin/eowatch demo-s1 --out $(OUT)/s1-demo-input
	$(VENV)/bin/eowatch detect --before $(OUT)/s1-demo-input/s1demo_20190917_before.tif \
		--after $(OUT)/s1-demo-input/s1demo_20190929_after.tif --preset s1-flood --out $(OUT)/demo
	@echo "products in $(OUT)/demo (open quicklook.png, change_map.tif, changes.geojson, item.json)"

## Set up and run the test suite (lint and type checks first). A throwaway PostgreSQL
## server is started on 127.0.0.1 for the catalogue tests and stopped afterwards.
test: setup lint typecheck
	eval "$$(bash scripts/start_postgres.sh)" && $(PY) -m pytest -q; status=$$?; \
		bash scripts/stop_postgres.sh || true; exit $$status

lint: setup
	$(VENV)/bin/ruff check src tests

typecheck: setup
	$(VENV)/bin/mypy src
	$(VENV)/bin/mypy --strict src/eowatch/kernels src/eowatch/detect src/eowatch/engine

## Score the default preset on the labelled OSCD cities in the shared data.
evaluate: setup
	$(VENV)/bin/eowatch evaluate $(SHARED)/s2_pairs/oscd --cv leave-one-city-out --json $(OUT)/evaluation/oscd.json
	$(VENV)/bin/eowatch evaluate $(SHARED)/s1_pairs/ombria_s1_trainsubset --dataset ombria \
		--json $(OUT)/evaluation/ombria.json

## Full-scene benchmark: every preset on a 10980² S2 tile pair and S1 pair, the omnibus series,
## OTB MAD, Dask 1 -> 2 workers; apt-get for otb-bin. Narrow it with BENCH_ARGS="--only otb,s2".
BENCH_ARGS ?= --s2-presets all --s1-presets all
bench: setup
	bash scripts/setup_bench.sh
	$(PY) benchmarks/full_scene.py --json $(OUT)/bench/full_scene.json $(BENCH_ARGS)

clean:
	rm -rf $(OUT) .pytest_cache
