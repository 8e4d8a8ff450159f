"""The generator: schema files -> a validated model of plain data -> files. Data flows one way.

Stages (:mod:`codegen.generate` runs them):

1. **load** (:mod:`codegen.load`, :mod:`codegen.schema`, :mod:`codegen.shape`,
   :mod:`codegen.errors`): TOML files -> typed schema structs, every shape
   error of every file reported at once, each file kept with its text so any
   key can be located;
2. **build** (:mod:`codegen.build`, :mod:`codegen.types`): validation ->
   :mod:`codegen.model`, plain data (names, types, default values,
   descriptions, the service map);
3. **Python back-end** (:mod:`codegen.python`): literals, docstrings,
   annotations, imports -> templates -> layout -> parse check;
4. **output** (:mod:`codegen.output`): diff, write or check files on disk.

Side products of the same model, grouped by job: :mod:`codegen.contracts`
(compatibility rules, the contract snapshot, breaking changes),
:mod:`codegen.system` (flows, AsyncAPI, Mermaid) and :mod:`codegen.usercode`
(checking and scaffolding the users' handler classes). Of the runtime,
codegen uses only the leaf vocabulary: ``toolkit.routing``, ``toolkit.wire``,
``toolkit.paths`` and ``toolkit.config``.
"""
