"""Stage 2, build: validate the loaded schema files into the model (:mod:`codegen.model`).

One pass per concern, each in its own module, in this order (later passes
read what earlier ones found):

1. service names (here), then per service :mod:`~codegen.build.named_types`
   (``[types.*]``, whose fields go through :mod:`~codegen.build.fields` and
   :mod:`~codegen.build.defaults`, and whose depth
   :mod:`~codegen.build.nesting` bounds);
2. :mod:`~codegen.build.messages`: the contracts each service owns;
3. :mod:`~codegen.build.channels`: channels, command channels, event routes;
4. :mod:`~codegen.build.routes`: subscriptions and sends, with their views
   checked by :mod:`~codegen.build.compatibility`; then method-name clashes
   (:mod:`~codegen.build.names`);
5. with no error found: :mod:`~codegen.build.subscriptions`, warnings about
   subscriptions that receive nothing or deliver events no handler reads.

Every problem of a run is collected (not just the first) and raised together
as :class:`~codegen.errors.SchemaErrors`, each with file, line, key path,
what is wrong and how to fix it. Each is reported once, where it was made:
what an error makes unusable (a field, a named type, a contract, a service
name) is recorded on the state (:mod:`~codegen.build.state`), and the passes
after it stay quiet about it instead of reporting its consequences elsewhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from codegen.build.channels import build_channels
from codegen.build.messages import build_owned_messages
from codegen.build.named_types import build_named_types
from codegen.build.names import (
    METADATA_KEY,
    check_method_names,
    service_name_problem,
    snake_to_pascal,
)
from codegen.build.routes import build_sends, build_subscriptions
from codegen.build.state import ServiceState, SystemState
from codegen.build.subscriptions import warn_subscriptions
from codegen.errors import SchemaErrors
from codegen.load import SourceFile, load_files
from codegen.model import MessageModel, ServiceModel, SystemModel

__all__ = ["build_system", "load_system"]


def load_system(schemas_dir: Path, package: str = "generated") -> SystemModel:
    """Read every ``*.toml`` under ``schemas_dir`` and build the system model."""
    return build_system(load_files(schemas_dir), package)


def build_system(files: list[SourceFile], package: str) -> SystemModel:
    """The model of ``files``; raises SchemaErrors listing every problem found."""
    state = SystemState()
    _services(state, files)
    for svc in state.services.values():
        build_named_types(svc)
    for svc in state.services.values():
        build_owned_messages(state, svc)
    channels, command_routes, state.routes = build_channels(state)
    for svc in state.services.values():
        build_subscriptions(state, svc)
        build_sends(state, svc)
        check_method_names(svc)
    problems = [d for f in files for d in f.diagnostics]
    if problems:
        raise SchemaErrors(problems)
    # Only a system without errors: an error would make these guesses wrong.
    warn_subscriptions(state)
    warnings = sorted(d for f in files for d in f.diagnostics)
    ordered = sorted(state.services.values(), key=lambda s: s.name)
    views = sorted(
        ((v.routing_key, svc.name, v) for svc in ordered for v in svc.views),
        key=lambda item: (item[0], item[1], item[2].class_name),
    )
    return SystemModel(
        package=package,
        services=tuple(_service_model(svc) for svc in ordered),
        channels=channels,
        command_routes=command_routes,
        event_routes=state.routes,
        messages=tuple(
            MessageModel(key, owned.kind, owned.owner.name, owned.contract, owned.priority)
            for key, owned in sorted(state.owned.items())
        ),
        views=tuple(views),
        source_files=tuple(f.display for f in files),
        sources_hash=hashlib.sha256("".join(f.hash for f in files).encode()).hexdigest()[:16],
        sources_label=_sources_label(files),
        warnings=tuple(warnings),
    )


def _services(state: SystemState, files: list[SourceFile]) -> None:
    """One service per file, with a valid name that no other file uses.

    A service with a bad name is still built (under that name), so that the
    rest of its file is checked and other files that name it resolve.
    """
    for file in files:
        name = file.decl.service.name
        problem = service_name_problem(name)
        if problem:
            file.error(("service", "name"), problem, 'e.g. name = "ticket_service"')
        _check_propagate(file)
        if name in state.services:
            first = state.services[name]
            file.error(
                ("service", "name"),
                f"service {name!r} is already declared in {first.file.display}",
                "each service has exactly one schema file; rename one of them",
            )
            # Its keys are someone's: references to them are not reported as unknown.
            for key in file.decl.commands:
                state.unbuilt.setdefault(key, ("command", first))
            for key in file.decl.events:
                state.unbuilt.setdefault(key, ("event", first))
            continue
        state.services[name] = ServiceState(file, file.decl)


def _check_propagate(file: SourceFile) -> None:
    seen: set[str] = set()
    for index, key in enumerate(file.decl.service.propagate):
        path = ("service", "propagate", index)
        if not METADATA_KEY.match(key):
            file.error(
                path,
                f"metadata key {key!r} is not valid",
                "use letters, digits, '_', '-', '.' or ':', e.g. \"tenant\" or \"traceparent\"",
            )
        elif key in seen:
            file.error(path, f"metadata key {key!r} is listed twice", "list each key once")
        seen.add(key)


def _service_model(svc: ServiceState) -> ServiceModel:
    return ServiceModel(
        name=svc.name,
        description=svc.decl.service.description,
        source_file=svc.file.display,
        source_hash=svc.file.hash,
        class_prefix=snake_to_pascal(svc.name),
        enums=tuple(sorted(svc.enums, key=lambda e: e.class_name)),
        structs=tuple(svc.type_structs)
        + tuple(sorted(svc.contracts, key=lambda s: s.routing_key))
        + tuple(sorted(svc.views, key=lambda s: (s.routing_key, s.class_name))),
        handlers=tuple(sorted(svc.handlers, key=lambda h: h.routing_key)),
        publishers=tuple(sorted(svc.publishers, key=lambda p: (p.kind, p.routing_key))),
        channels=tuple(sorted(svc.decl.channels)),
        propagate=tuple(svc.decl.service.propagate),
    )


def _sources_label(files: list[SourceFile]) -> str:
    parents = {str(Path(f.display).parent) for f in files}
    if len(parents) == 1:
        parent = parents.pop()
        return "*.toml" if parent == "." else f"{parent}/*.toml"
    return ", ".join(f.display for f in files)
