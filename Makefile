# The two set-up commands (see README.md). Everything else is `geoioc --help`.
.PHONY: run test test-fast lint bench

run:
	@bash scripts/setup.sh run

test:
	@bash scripts/setup.sh test

# A developer's inner loop: the same set-up and checks, without the tests marked slow (browser,
# GDAL/OWSLib clients, migrations round trip, set-up run again, outage). CI runs `make test`.
test-fast:
	@PYTEST_ADDOPTS='-m "not slow"' bash scripts/setup.sh test

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	.venv/bin/python bench/ogc.py
