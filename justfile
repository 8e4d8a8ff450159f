# Everyday commands. `just --list` shows them all.

# install the toolkit with its test and lint tools
setup:
    pip install -e ".[dev]" --config-settings editable_mode=strict

# generate code from schemas/ into generated/
generate:
    toolkit generate

# CI: fail when generated/ or docs/system/ has drifted from schemas/, or when the
# contracts break against the base branch (`just check origin/release` for another).
# The base must be a git revision: the committed lock file moves with every
# `toolkit generate`, so comparing with it would never see a breaking change.
check BASE="origin/main":
    toolkit generate --check
    toolkit docs --check
    toolkit check --against {{BASE}}

# breaking changes against a git revision, e.g. `just breaking origin/main`
breaking REF="HEAD":
    toolkit check --against {{REF}}

# write or complete a handler module: `just scaffold ticket_service app/tickets.py`
scaffold SERVICE INTO:
    toolkit scaffold {{SERVICE}} --into {{INTO}}

# the test suite (the README's test command)
test *ARGS:
    python -m pytest {{ARGS}}

# ruff, ruff format and mypy --strict
lint:
    ruff check .
    ruff format --check .
    mypy

# AsyncAPI 3.0 document and Mermaid service map into docs/system/
docs:
    toolkit docs

# run the bundled example in memory, printing each hop
demo:
    toolkit demo

# all benchmarks
bench: bench-memory bench-generate bench-redis bench-rabbitmq bench-host

# in-memory publish -> dispatch -> handler vs a bare msgspec loop
bench-memory:
    python -m bench.inmemory

# toolkit generate on 1,000 contracts
bench-generate:
    python -m bench.generate

# Redis Streams end to end vs hand-written redis-py and FastStream
bench-redis:
    pip install -q -e ".[bench]" --config-settings editable_mode=strict
    python -m bench.redis_e2e

# one service host on two channels vs two single-channel runners (aim >= 0.9x)
# RabbitMQ end to end (quorum queues): ours vs hand-written aio-pika vs FastStream; --count N
bench-rabbitmq *args:
    pip install -q -e ".[bench]" --config-settings editable_mode=strict
    python -m bench.rabbitmq_e2e {{args}}

bench-host:
    python -m bench.host
