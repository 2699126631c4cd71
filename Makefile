# lakeforge: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test unit lint bench bench-env clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e ".[dev,cdc,bench,serve,airflow,dagster,iceberg,s3,scale,streams]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# compiled once here: with PYTHONDONTWRITEBYTECODE set (as on these machines) every lakeforge process would
# otherwise compile its own modules again (~0.5 s of CPU a process)
install: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 src demo bench > /dev/null

demo: install
	$(BIN)/python demo/run_demo.py

test: install
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

unit: install
	$(BIN)/python -m pytest -q -m "not integration"

lint: install
	$(BIN)/ruff format --check src
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

# the DuckDB-scanner and Sling contenders pin DuckDB 1.5.5 (their extensions' version): an environment of their own
CONTENDERS_VENV = .venv-contenders
CONTENDERS_STAMP = $(CONTENDERS_VENV)/.installed-$(shell cat bench/contenders-env.txt | cksum | cut -d' ' -f1)

$(CONTENDERS_STAMP): bench/contenders-env.txt $(STAMP)
	test -x $(CONTENDERS_VENV)/bin/python || $(BIN)/uv venv -q --python $(BIN)/python $(CONTENDERS_VENV)
	$(BIN)/uv pip install -q --compile-bytecode --python $(CONTENDERS_VENV)/bin/python -r bench/contenders-env.txt
	rm -f $(CONTENDERS_VENV)/.installed-* && touch $(CONTENDERS_STAMP)

bench-env: $(CONTENDERS_STAMP)

bench: install bench-env
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CONTENDERS_VENV) demo/lakehouse .pytest_cache
