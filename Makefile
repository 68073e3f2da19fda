# Qinglian on this machine. `make up` and `make test` are the two commands in README.md.
.PHONY: setup up down status test lint

setup:  ## install the Python environment and fetch/build Kafka and FerretDB (cached)
	deploy/local/setup.sh

up: setup  ## start Kafka, FerretDB and the services, post the demo complaints, print the report, the desk's demo accounts, the portal's URL and a sample QR sheet
	deploy/local/runtime.sh start
	deploy/local/services.sh start
	.venv/bin/python deploy/local/demo.py

down:  ## stop the services, then Kafka and FerretDB (data is kept in .local/)
	deploy/local/services.sh stop
	deploy/local/runtime.sh stop

status:
	@deploy/local/runtime.sh status
	@deploy/local/services.sh status

test: setup  ## lint, type-check and run every test against a fresh Kafka and FerretDB
	deploy/local/test.sh

lint:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy
