"""The Python back-end: the model -> the generated package's source.

:mod:`~codegen.python.pytext` (literals, docstrings, comments),
:mod:`~codegen.python.fields` (annotations, defaults, declarations),
:mod:`~codegen.python.imports` (import lines), :mod:`~codegen.python.views`
(what each template prints) and :mod:`~codegen.python.render` (templates,
layout, parse check: ``render_python``).
"""
