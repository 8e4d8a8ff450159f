"""Old import path of the implementation drift checks; see :mod:`toolkit.testing.drift`.

Kept so that existing imports go on working (the same objects).
"""

from __future__ import annotations

from toolkit.testing.drift import assert_handlers_match, implementation_problems

__all__ = ["assert_handlers_match", "implementation_problems"]
