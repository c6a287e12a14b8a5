# The two set-up commands (see README.md). Everything else is `geoioc --help`.
.PHONY: run test lint bench

run:
	@bash scripts/setup.sh run

test:
	@bash scripts/setup.sh test

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	.venv/bin/python bench/ogc.py
