"""The world's imports, in one place. Not a stable API: use the modules of
this package.

``componentize-py`` generates the ``wit_world`` package from the WIT when it
builds the component. Outside a component (plain CPython, for unit tests of
a step's own helpers) it does not exist, and any host call raises a
``RuntimeError`` that says so.
"""

from __future__ import annotations

from typing import Any


class _NotInAComponent:
    def __init__(self, interface: str) -> None:
        self._interface = interface

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"stepbox_sdk: {self._interface}.{name} is a host call; it only works inside a step "
            "component (built with `stepbox build`, run with `stepbox run`)"
        )


try:
    from componentize_py_types import Err
    from wit_world.imports import helm, kube, kustomize, run

    try:
        from wit_world.imports import types
    except ImportError:  # built with wasi:http, whose `types` takes the short name
        from wit_world.imports import stepbox_step_types as types  # type: ignore[no-redef]
except ImportError:  # not inside a component
    helm = _NotInAComponent("helm")  # type: ignore[assignment]
    kube = _NotInAComponent("kube")  # type: ignore[assignment]
    kustomize = _NotInAComponent("kustomize")  # type: ignore[assignment]
    run = _NotInAComponent("run")  # type: ignore[assignment]
    types = None  # type: ignore[assignment]

    class Err(Exception):  # type: ignore[no-redef]
        """Stands in for componentize_py_types.Err outside a component."""

        def __init__(self, value: Any) -> None:
            super().__init__(value)
            self.value = value
