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
bench: bench-memory bench-generate bench-redis bench-cluster bench-rabbitmq bench-host bench-postgres bench-telemetry bench-outbox bench-dedup bench-exactly-once

# in-memory publish -> dispatch -> handler vs a bare msgspec loop
bench-memory:
    python -m bench.inmemory

# toolkit generate on 1,000 contracts
bench-generate:
    python -m bench.generate

# Redis Streams end to end through `toolkit run` vs the hand-written sync redis-py loop, redis.asyncio and FastStream: each ratio beside its goal
bench-redis:
    pip install -q -e ".[bench]" --config-settings editable_mode=strict
    python -m bench.redis_e2e

# Consumer CPU per message with deduplication on vs off, Redis (issue 12)
bench-dedup *ARGS:
    python -m bench.dedup {{ARGS}}

# PostgreSQL: draining with exactly-once effect vs plain deduplication vs neither, the handler writing a row (issue 12)
bench-exactly-once *ARGS:
    python -m bench.exactly_once {{ARGS}}

# Redis Cluster: 3 masters vs one server, 8 shards vs 1, a failover
bench-cluster *ARGS:
    python -m bench.redis_cluster {{ARGS}}

# PostgreSQL end to end vs the hand-written psycopg 3 visibility-timeout loop (issue 10)
bench-postgres *ARGS:
    python -m bench.postgres_e2e {{ARGS}}

# telemetry off vs metrics vs traces + metrics (OpenTelemetry SDK, exporter dropping all)
bench-telemetry:
    python -m bench.telemetry

# one service host on two channels vs two single-channel runners (aim >= 0.9x)
# RabbitMQ end to end (quorum queues): ours vs hand-written aio-pika vs FastStream; --count N
bench-rabbitmq *args:
    pip install -q -e ".[bench]" --config-settings editable_mode=strict
    python -m bench.rabbitmq_e2e {{args}}

bench-host:
    python -m bench.host

# publishing through the transactional outbox (PostgreSQL transaction + relay to Redis) vs directly to Redis
bench-outbox *ARGS:
    python -m bench.outbox {{ARGS}}
