"""Pipes tests that need a real Redis use the private server of tests/redis."""

from tests.redis.conftest import prefix, redis_server, redis_url

__all__ = ["prefix", "redis_server", "redis_url"]
