"""Stage 2, build: validate the loaded schema files into the model (:mod:`codegen.model`).

One pass per concern, each in its own module, in this order (later passes
read what earlier ones found):

1. service names (here), then per service :mod:`~codegen.build.named_types`
   (``[types.*]``, whose fields go through :mod:`~codegen.build.fields` and
   :mod:`~codegen.build.defaults`);
2. :mod:`~codegen.build.messages`: the contracts each service owns;
3. :mod:`~codegen.build.channels`: channels, command channels, event routes;
4. :mod:`~codegen.build.routes`: subscriptions and sends, with their views
   checked by :mod:`~codegen.build.compatibility`; then method-name clashes
   (:mod:`~codegen.build.names`).

Every problem of a run is collected (not just the first) and raised together
as :class:`~codegen.errors.SchemaErrors`, each with file, line, key path,
what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from codegen.build.channels import build_channels
from codegen.build.messages import build_owned_messages
from codegen.build.named_types import build_named_types
from codegen.build.names import check_method_names, service_name_problem, snake_to_pascal
from codegen.build.routes import build_sends, build_subscriptions
from codegen.build.state import ServiceState, SystemState
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
            MessageModel(key, owned.kind, owned.owner.name, owned.contract)
            for key, owned in sorted(state.owned.items())
        ),
        views=tuple(views),
        source_files=tuple(f.display for f in files),
        sources_hash=hashlib.sha256("".join(f.hash for f in files).encode()).hexdigest()[:16],
        sources_label=_sources_label(files),
    )


def _services(state: SystemState, files: list[SourceFile]) -> None:
    """One service per file, with a valid name that no other file uses."""
    for file in files:
        name = file.decl.service.name
        problem = service_name_problem(name)
        if problem:
            file.error(("service", "name"), problem, 'e.g. name = "ticket_service"')
            continue
        if name in state.services:
            other = state.services[name].file
            file.error(
                ("service", "name"),
                f"service {name!r} is already declared in {other.display}",
                "each service has exactly one schema file; rename one of them",
            )
            continue
        state.services[name] = ServiceState(file, file.decl)


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
    )


def _sources_label(files: list[SourceFile]) -> str:
    parents = {str(Path(f.display).parent) for f in files}
    if len(parents) == 1:
        parent = parents.pop()
        return "*.toml" if parent == "." else f"{parent}/*.toml"
    return ", ".join(f.display for f in files)
