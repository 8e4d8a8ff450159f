"""Old home of :mod:`codegen.usercode.impl_check`, kept for ``toolkit.testing_drift``.

``toolkit.testing_drift`` (runtime side, edited in another branch) still
imports ``check_implementations`` and ``ImplProblem`` from here; drop this
module once it imports from :mod:`codegen.usercode.impl_check`.
"""

from __future__ import annotations

from codegen.usercode.impl_check import ImplConfigError, ImplProblem, check_implementations

__all__ = ["ImplConfigError", "ImplProblem", "check_implementations"]
