"""Import aiogram in well under a second instead of about 3.5 s (and 60 MB instead of 170 MB).

Why: aiogram declares its ~600 pydantic models with ``defer_build=True`` but then, at the end
of ``aiogram/types/__init__.py``, calls ``model_rebuild`` on every one of them with a namespace
holding all the types, which builds every schema at import. `botdesk campaign run` sends with
a handful of them, so almost all of that work (and memory) was for nothing.

How: a meta-path hook, installed by ``botdesk/cli/main.py`` for commands that send or list
(it costs nothing until aiogram is
imported), wraps the import of the ``aiogram`` package. While aiogram's own ``__init__`` runs,
``model_rebuild`` calls that pass a ``_types_namespace`` for aiogram's types only record that
namespace as the model's parent namespace (pydantic resolves forward references from it) and
return; afterwards every still-incomplete aiogram model gets the same namespace, so pydantic
builds each one on first use, exactly as ``defer_build`` intends. ``model_rebuild`` itself is
restored right after. tests/unit/test_fast_import.py builds every aiogram model through this
path, so an aiogram or pydantic upgrade that breaks the trick fails there, not in production.
Set ``BOTDESK_EAGER_AIOGRAM=1`` to import aiogram the stock way.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any


class _Wrapping(importlib.abc.Loader):
    """A module's own loader, with something done around its execution."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)


class _Loader(_Wrapping):
    def exec_module(self, module: ModuleType) -> None:
        from pydantic import BaseModel

        real = BaseModel.__dict__["model_rebuild"]
        namespace: dict[str, Any] = {}

        def deferred(cls: type[BaseModel], *args: Any, **kwargs: Any) -> bool | None:
            types_ns = kwargs.get("_types_namespace")
            if (
                types_ns is not None
                and not kwargs.get("force")
                and cls.__module__.startswith("aiogram.types.")
            ):
                namespace.update(types_ns)
                cls.__pydantic_parent_namespace__ = namespace
                return None
            result: bool | None = real.__func__(cls, *args, **kwargs)
            return result

        BaseModel.model_rebuild = classmethod(deferred)  # type: ignore[assignment,method-assign]
        # The cyclic collector would run dozens of times over the ~1,000 classes and
        # modules being created (none of it is garbage): off while aiogram imports, about
        # 0.1 s of CPU. What the import made is then frozen (kept out of later collections).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.inner.exec_module(module)
        finally:
            BaseModel.model_rebuild = real  # type: ignore[method-assign]
            if collecting:
                gc.enable()
        gc.freeze()
        for mod_name, mod in list(sys.modules.items()):
            if not mod_name.startswith("aiogram.") or mod is None:
                continue
            for obj in list(vars(mod).values()):
                if (
                    isinstance(obj, type)
                    and issubclass(obj, BaseModel)
                    and obj.__module__.startswith("aiogram.")
                    and not obj.__pydantic_complete__
                ):
                    obj.__pydantic_parent_namespace__ = {
                        **(obj.__pydantic_parent_namespace__ or {}),
                        **namespace,
                    }


class _MethodsBaseLoader(_Wrapping):
    """Runs ``aiogram.methods.base``, then marks ``TelegramMethod``'s config ``defer_build``:
    pydantic copies a base's ``model_config`` into every subclass declared afterwards."""

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        base = getattr(module, "TelegramMethod", None)
        if base is not None:
            base.model_config["defer_build"] = True


class _ConnectorLoader(_Wrapping):
    """Runs ``aiohttp.connector`` without loading the system CA store into its two default
    SSL contexts; each loads it the first time a connector hands it out.

    Why: aiohttp builds a verified and an unverified default context at import, each reading
    every system certificate (about 30-40 ms of CPU apiece, on the path to the first message
    of ``campaign run``). aiogram never uses them: its session passes its own context (certifi)
    to every connector, so ``TCPConnector._get_ssl_context`` returns that one. Anything else
    in the process that makes an HTTPS request with aiohttp's defaults still gets a context
    with the CA store loaded, just later.
    """

    def exec_module(self, module: ModuleType) -> None:
        import ssl

        real = ssl.SSLContext.__dict__.get("set_default_verify_paths")
        pending: list[ssl.SSLContext] = []

        def record(ctx: ssl.SSLContext) -> None:
            pending.append(ctx)

        ssl.SSLContext.set_default_verify_paths = record  # type: ignore[method-assign,assignment]
        try:
            self.inner.exec_module(module)
        finally:
            if real is None:
                del ssl.SSLContext.set_default_verify_paths
            else:  # pragma: no cover - ssl.SSLContext inherits it from _ssl
                ssl.SSLContext.set_default_verify_paths = real  # type: ignore[method-assign]
        connector = getattr(module, "TCPConnector", None)
        if not pending or connector is None:
            for ctx in pending:  # pragma: no cover - an aiohttp without TCPConnector
                ctx.set_default_verify_paths()
            return
        get_ssl_context = connector._get_ssl_context

        def _get_ssl_context(self: Any, req: Any) -> ssl.SSLContext | None:
            ctx: ssl.SSLContext | None = get_ssl_context(self, req)
            for i, waiting in enumerate(pending):
                if waiting is ctx:
                    del pending[i]
                    ctx.set_default_verify_paths()
                    break
            return ctx

        connector._get_ssl_context = _get_ssl_context


_WRAPPED: dict[str, type[_Wrapping]] = {
    "aiogram": _Loader,
    "aiogram.methods.base": _MethodsBaseLoader,
    "aiohttp.connector": _ConnectorLoader,
}


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.pending = dict(_WRAPPED)

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        wrap = self.pending.pop(fullname, None)
        if wrap is None:
            return None
        if not self.pending:
            sys.meta_path.remove(self)  # these modules, once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = wrap(spec.loader)
        return spec


def install() -> None:
    if os.environ.get("BOTDESK_EAGER_AIOGRAM") == "1" or "aiogram" in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
