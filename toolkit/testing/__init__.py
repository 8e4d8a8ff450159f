"""Helpers for testing services built on toolkit, without any server.

* :class:`InMemorySystem` (:mod:`toolkit.testing.system`): several services
  in one process on in-memory channels.
* :func:`assert_no_drift`, :func:`assert_handlers_match`,
  :func:`implementation_problems` (:mod:`toolkit.testing.drift`): generated
  code and handler implementations against the schema files. They load the
  generator only when called.

The pytest plugin (``toolkit.pytest_plugin``, registered automatically) wraps
these as fixtures: ``toolkit_system``, ``make_system``, ``memory_transport``,
``toolkit_drift``.
"""

from __future__ import annotations

from toolkit.testing.drift import assert_handlers_match, assert_no_drift, implementation_problems
from toolkit.testing.system import InMemorySystem

__all__ = ["InMemorySystem", "assert_handlers_match", "assert_no_drift", "implementation_problems"]
