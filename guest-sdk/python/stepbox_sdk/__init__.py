"""Write stepbox deployment steps in Python.

A step is a module ``step.py`` with a function ``run(ctx)``. It reaches the
outside world only through what the host grants: Kubernetes objects in the
run's namespace (:mod:`~stepbox_sdk.kube`, with pod logs and Events), helm
releases there (:mod:`~stepbox_sdk.helm`), kustomizations rendered
(:mod:`~stepbox_sdk.kustomize`), HTTP to the destinations the policy allows
(:mod:`~stepbox_sdk.http`), its inputs, secrets, outputs, progress,
artifacts and log, and files under ``/packages`` (read-only) and
``/workspace`` (plain ``open``, ``os``, ``pathlib``). A refused call raises
:class:`Forbidden`; the step may catch it like any other exception::

    from stepbox_sdk import Context, kube, log, require_input, set_output

    def run(ctx: Context) -> None:
        name = require_input("name")
        for a in kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": name}, "data": {"by": ctx.step_name}}):
            log.info(a.kubectl_name(), a.action)
        kube.wait(kube.CONFIG_MAP, name, "exists", timeout=30)
        set_output("configmap", name)

An exception that leaves ``run`` fails the run with its text: ``str(e)`` of
a :class:`StepboxError` (``"forbidden: ..."``), else ``"TypeError: ..."``
with the traceback in the log.

Host calls only work inside ``run``: top-level code of a step runs once,
when the component is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import helm, http, kube, kustomize, log, yaml
from ._run import (
    artifact,
    bool_input,
    input,
    inputs,
    int_input,
    progress,
    require_input,
    require_secret,
    secret,
    set_output,
    set_sensitive_output,
)
from .errors import (
    Conflict,
    Forbidden,
    Invalid,
    LimitExceeded,
    NotFound,
    StepboxError,
    StepFailed,
    Timeout,
    Unavailable,
    with_context,
)
from .template import substitute


@dataclass(frozen=True)
class Context:
    """What the host tells a step about the run it is part of."""

    namespace: str
    """The Kubernetes namespace every kube and helm call is confined to."""
    step_name: str
    """The step's name (from the component file name unless given)."""
    run_id: str
    """A unique id for this run."""
    dry_run: bool
    """True when nothing real is changed: the embedded namespace, or a live cluster with server-side dry-run."""


__all__ = [
    "Conflict",
    "Context",
    "Forbidden",
    "Invalid",
    "LimitExceeded",
    "NotFound",
    "StepFailed",
    "StepboxError",
    "Timeout",
    "Unavailable",
    "artifact",
    "bool_input",
    "helm",
    "http",
    "input",
    "inputs",
    "int_input",
    "kube",
    "kustomize",
    "log",
    "progress",
    "require_input",
    "require_secret",
    "secret",
    "set_output",
    "set_sensitive_output",
    "substitute",
    "with_context",
    "yaml",
]
