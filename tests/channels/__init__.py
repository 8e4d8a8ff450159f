import pytest

# The conformance suite's modules are not test modules: have pytest explain their asserts too.
pytest.register_assert_rewrite("tests.channels.suite")
