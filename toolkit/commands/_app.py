"""``--app module:object``: loading the application ``toolkit run`` serves.

The object is imported (the current directory is importable, as with
``python -m``). A :class:`~toolkit.app.App` is used as it is: the host
starts it with its context. The older forms still work: a class or function
taking no arguments is called (a factory), and what it returns, or any other
object, is bound with the generated ``<package>.<service>.bind`` (a
Dispatcher is kept). Every failure is an :class:`AppError` whose message the
command prints.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from toolkit.app import App, AppError
from toolkit.config import import_generated
from toolkit.dispatcher import Dispatcher
from toolkit.service_map import ServiceMap

__all__ = ["AppError", "app_for", "bind_app", "load_app", "service_map_of"]


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (dotted attribute path allowed).

    An App is returned as it is. A class or a plain function is called with
    no arguments (a factory); anything else is used as it is: a handler
    implementation or a Dispatcher. The current directory is importable, as
    with ``python -m``.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppError(f"--app must look like 'module:object', not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AppError(f"cannot import {module_name!r} for --app {spec}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppError(f"{module_name!r} has no attribute {attribute!r}") from None
    if isinstance(target, App):
        return target
    if inspect.iscoroutinefunction(target):
        raise AppError(f"{spec} is an async factory; give a plain function or class, or an App")
    if inspect.isclass(target) or inspect.isfunction(target):
        if _needs_arguments(target):
            raise AppError(
                f"{spec} takes arguments, and --app calls a class or function with none; "
                "for handlers that need the publisher, give a toolkit.App (docs/api.md)"
            )
        target = target()
    return target


def _needs_arguments(factory: Any) -> bool:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return False  # a builtin without a signature: let the call say
    return any(
        p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in signature.parameters.values()
    )


def app_for(
    loaded: Any, service: str, package: str, output: Path | None = None
) -> App[Any] | Dispatcher:
    """What the host runs for ``service``: an App as it is, anything else bound (:func:`bind_app`)."""
    if isinstance(loaded, App):
        if loaded.service != service:
            raise AppError(f"--app gives the App of {loaded.service!r}, not of {service!r}")
        return loaded
    return bind_app(loaded, service, package, output)


def bind_app(app: Any, service: str, package: str, output: Path | None = None) -> Dispatcher:
    """Bind ``app`` with the generated ``<package>.<service>.bind`` (a Dispatcher is kept)."""
    if isinstance(app, Dispatcher):
        if app.service != service:
            raise AppError(f"--app gives a dispatcher for {app.service!r}, not {service!r}")
        return app
    module = _import_generated(f"{package}.{service}", output)
    bind = getattr(module, "bind", None)
    if bind is None:
        raise AppError(
            f"{package}.{service} has no bind(): {service} consumes nothing (it owns no "
            "command and subscribes to no event), or this is not a generated service package"
        )
    dispatcher: Dispatcher = bind(app)
    return dispatcher


def service_map_of(package: str, output: Path | None = None) -> ServiceMap:
    module = _import_generated(package, output)
    service_map = getattr(module, "SERVICE_MAP", None)
    if not isinstance(service_map, ServiceMap):
        raise AppError(f"{package} has no SERVICE_MAP; run `toolkit generate`")
    return service_map


def _import_generated(name: str, output: Path | None) -> Any:
    try:
        if output is not None:
            return import_generated(output, name)
        return importlib.import_module(name)
    except ImportError as exc:
        raise AppError(f"cannot import generated package {name!r}: {exc}") from exc
