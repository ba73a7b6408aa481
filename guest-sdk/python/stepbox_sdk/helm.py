"""Helm releases in the run's namespace, from charts in the step's own
filesystem (a chart directory or a packaged ``.tgz`` under ``/packages`` or
``/workspace``).

Before anything is installed the host renders the chart and checks every
object and hook against the run's policy; one refused object means nothing
is installed and the call raises :class:`~stepbox_sdk.Forbidden` naming each
one. Values are YAML text or a dict; they are never logged::

    from stepbox_sdk import helm, log

    result = helm.upgrade_or_install("web", "/packages/charts/web", {"replicaCount": 2}, wait=True, timeout=300)
    log.info(f"release {result.release.name} is at revision {result.release.revision} ({result.release.status})")
"""

from __future__ import annotations

import builtins
import json
import math
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Optional, Union

from . import _wit
from .errors import Invalid, call
from .kube import Action, kubectl_name

Seconds = Union[int, float, timedelta]


class Status(StrEnum):
    """The state of a release revision, as helm names it (compares equal to the word)."""

    UNKNOWN = "unknown"
    DEPLOYED = "deployed"
    UNINSTALLED = "uninstalled"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    UNINSTALLING = "uninstalling"
    PENDING_INSTALL = "pending-install"
    PENDING_UPGRADE = "pending-upgrade"
    PENDING_ROLLBACK = "pending-rollback"


@dataclass(frozen=True)
class Release:
    """One revision of a release."""

    name: str
    namespace: str
    revision: int
    status: Status
    chart_name: str
    chart_version: str
    app_version: str
    description: str
    updated: str


@dataclass(frozen=True)
class Touched:
    """One object a release call touched."""

    api_version: str
    kind: str
    name: str
    action: Action
    hook: bool

    def kubectl_name(self) -> str:
        return kubectl_name(self.api_version, self.kind, self.name)


@dataclass(frozen=True)
class ObjectRef:
    """Names one object of a release."""

    api_version: str
    kind: str
    name: str

    def kubectl_name(self) -> str:
        return kubectl_name(self.api_version, self.kind, self.name)


@dataclass(frozen=True)
class ReleaseResult:
    """The result of :func:`upgrade_or_install`, :func:`rollback` and :func:`uninstall`."""

    release: Release
    objects: builtins.list[Touched] = field(default_factory=builtins.list)
    notes: str = ""

    def with_action(self, action: Union[Action, str]) -> builtins.list[Touched]:
        """The objects with one action."""
        return [o for o in self.objects if o.action == action]


@dataclass(frozen=True)
class ReleaseDetails:
    """What :func:`status` reports."""

    release: Release
    objects: builtins.list[ObjectRef]
    notes: str


def _word(enum_value: Any) -> str:
    return enum_value.name.lower().replace("_", "-")


def _release(r: Any) -> Release:
    return Release(
        name=r.name,
        namespace=r.namespace,
        revision=r.revision,
        status=Status(_word(r.status)),
        chart_name=r.chart_name,
        chart_version=r.chart_version,
        app_version=r.app_version,
        description=r.description,
        updated=r.updated,
    )


def _result(r: Any) -> ReleaseResult:
    return ReleaseResult(
        release=_release(r.release),
        objects=[Touched(o.api_version, o.kind, o.name, Action(_word(o.action)), o.hook) for o in r.objects],
        notes=r.notes,
    )


def _seconds(timeout: Optional[Seconds]) -> int:
    """0 (helm's default, 5 minutes) when not given, else whole seconds rounded up, at least 1."""
    if timeout is None:
        return 0
    value = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not math.isfinite(value) or value < 0:
        raise Invalid(f"a timeout is a number of seconds (or a timedelta), not {timeout!r}")
    return max(1, min(math.ceil(value), 0xFFFFFFFF))


def _values(values: Union[str, dict[str, Any], None]) -> str:
    if values is None:
        return ""
    if isinstance(values, str):
        return values
    if isinstance(values, dict):
        return json.dumps(values, ensure_ascii=False, allow_nan=False)
    raise Invalid("helm values are YAML text or a dict")


def upgrade_or_install(
    release: str,
    chart: str,
    values: Union[str, dict[str, Any], None] = None,
    *,
    wait: bool = False,
    timeout: Optional[Seconds] = None,
    atomic: bool = False,
) -> ReleaseResult:
    """Installs ``chart`` as release ``release``, or upgrades the release if it
    exists. ``wait``: until every object is ready; ``timeout``: for each
    Kubernetes operation (default helm's 5 minutes); ``atomic``: roll back on
    failure (implies wait)."""
    options = _wit.helm.UpgradeOptions(wait=wait, timeout_seconds=_seconds(timeout), atomic=atomic)
    return _result(call(_wit.helm.upgrade_or_install, release, chart, _values(values), options))


def uninstall(release: str, *, wait: bool = False, timeout: Optional[Seconds] = None) -> ReleaseResult:
    """Removes the release and every object it created."""
    options = _wit.helm.WaitOptions(wait=wait, timeout_seconds=_seconds(timeout))
    return _result(call(_wit.helm.uninstall, release, options))


def rollback(
    release: str, revision: Optional[int] = None, *, wait: bool = False, timeout: Optional[Seconds] = None
) -> ReleaseResult:
    """Rolls back to ``revision`` (None: the previous one). This makes a new revision."""
    options = _wit.helm.WaitOptions(wait=wait, timeout_seconds=_seconds(timeout))
    return _result(call(_wit.helm.rollback, release, revision or 0, options))


def status(release: str) -> ReleaseDetails:
    """The current revision of a release and its objects; :class:`~stepbox_sdk.NotFound` if there is none."""
    d = call(_wit.helm.status, release)
    return ReleaseDetails(
        release=_release(d.release),
        objects=[ObjectRef(o.api_version, o.kind, o.name) for o in d.objects],
        notes=d.notes,
    )


def list() -> builtins.list[Release]:  # noqa: A001
    """The releases in the run's namespace, sorted by name."""
    return [_release(r) for r in call(_wit.helm.list)]


def history(release: str) -> builtins.list[Release]:
    """Every revision of a release, oldest first."""
    return [_release(r) for r in call(_wit.helm.history, release)]


def template(release: str, chart: str, values: Union[str, dict[str, Any], None] = None) -> str:
    """Renders the chart without installing anything: multi-document YAML (CRDs and hooks included)."""
    return call(_wit.helm.template, release, chart, _values(values))
