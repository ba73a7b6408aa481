"""Kubernetes objects in the run's namespace.

The namespace is never a parameter: it is the run's, and a manifest naming
another namespace is refused. Every call is checked against the run's policy
first; a refused call raises :class:`~stepbox_sdk.Forbidden` and changes
nothing. Objects are plain dicts (parsed JSON)::

    from stepbox_sdk import kube, log

    for applied in kube.apply(open("/packages/web.yaml").read()):
        log.info(applied.kubectl_name(), applied.action)
    kube.wait(kube.DEPLOYMENT, "web", "rollout", timeout=300)
    web = kube.get(kube.DEPLOYMENT, "web")
"""

from __future__ import annotations

import builtins
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Iterable, Optional, Union

from . import _wit
from .errors import Invalid, call


@dataclass(frozen=True)
class KindRef:
    """Names an object kind: ``KindRef("apps/v1", "Deployment")``."""

    api_version: str
    kind: str

    def __str__(self) -> str:
        return f"{self.api_version} {self.kind}"

    def _wit(self) -> Any:
        return _wit.kube.KindRef(api_version=self.api_version, kind=self.kind)


CONFIG_MAP = KindRef("v1", "ConfigMap")
SECRET = KindRef("v1", "Secret")
SERVICE = KindRef("v1", "Service")
SERVICE_ACCOUNT = KindRef("v1", "ServiceAccount")
POD = KindRef("v1", "Pod")
PERSISTENT_VOLUME_CLAIM = KindRef("v1", "PersistentVolumeClaim")
DEPLOYMENT = KindRef("apps/v1", "Deployment")
STATEFUL_SET = KindRef("apps/v1", "StatefulSet")
DAEMON_SET = KindRef("apps/v1", "DaemonSet")
REPLICA_SET = KindRef("apps/v1", "ReplicaSet")
JOB = KindRef("batch/v1", "Job")
CRON_JOB = KindRef("batch/v1", "CronJob")
INGRESS = KindRef("networking.k8s.io/v1", "Ingress")
NETWORK_POLICY = KindRef("networking.k8s.io/v1", "NetworkPolicy")
HORIZONTAL_POD_AUTOSCALER = KindRef("autoscaling/v2", "HorizontalPodAutoscaler")
POD_DISRUPTION_BUDGET = KindRef("policy/v1", "PodDisruptionBudget")
ROLE = KindRef("rbac.authorization.k8s.io/v1", "Role")
ROLE_BINDING = KindRef("rbac.authorization.k8s.io/v1", "RoleBinding")


class Action(StrEnum):
    """What a write did to one object, in kubectl's words (compares equal to the word)."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class Condition:
    """Wait for ``status.conditions`` to hold ``name`` ("Available", "Ready", ...) with status "True"."""

    name: str


class WaitFor:
    """What to wait for: ``"rollout"``, ``"exists"``, ``"deleted"`` or ``WaitFor.condition(name)``."""

    ROLLOUT = "rollout"
    """A Deployment, StatefulSet or DaemonSet rolled out and ready; a Job completed."""
    EXISTS = "exists"
    """The object exists."""
    DELETED = "deleted"
    """The object no longer exists."""

    @staticmethod
    def condition(name: str) -> Condition:
        return Condition(name)


WaitCondition = Union[str, Condition]
Seconds = Union[int, float, timedelta]


def kubectl_name(api_version: str, kind: str, name: str) -> str:
    """The object as kubectl names it: ``deployment.apps/web``, ``configmap/settings``."""
    group, slash, _ = api_version.partition("/")
    return f"{kind.lower()}.{group}/{name}" if slash else f"{kind.lower()}/{name}"


@dataclass(frozen=True)
class Applied:
    """The result of an apply for one object."""

    api_version: str
    kind: str
    name: str
    action: Action
    resource_version: str

    def kubectl_name(self) -> str:
        """``deployment.apps/web``"""
        return kubectl_name(self.api_version, self.kind, self.name)

    def kind_ref(self) -> KindRef:
        """The object's kind, for the other calls."""
        return KindRef(self.api_version, self.kind)


_ACTIONS = {0: Action.CREATED, 1: Action.CONFIGURED, 2: Action.UNCHANGED, 3: Action.DELETED}


def _action(value: Any) -> Action:
    return Action(value.name.lower()) if hasattr(value, "name") else _ACTIONS[int(value)]


def seconds(timeout: Seconds) -> int:
    """Whole seconds, rounded up, within u32."""
    value = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not math.isfinite(value) or value < 0:
        raise Invalid(f"a timeout is a number of seconds (or a timedelta), not {timeout!r}")
    return min(math.ceil(value), 0xFFFFFFFF)


def _kind(kind: KindRef) -> Any:
    if not isinstance(kind, KindRef):
        raise Invalid(f"a kind is a KindRef (e.g. kube.DEPLOYMENT), not {kind!r}")
    return kind._wit()


def _wait_for(wait_for: WaitCondition) -> Any:
    w = _wit.kube
    if wait_for == "rollout":
        return w.WaitFor_Rollout()
    if wait_for == "exists":
        return w.WaitFor_Exists()
    if wait_for == "deleted":
        return w.WaitFor_Deleted()
    if isinstance(wait_for, Condition):
        return w.WaitFor_Condition(wait_for.name)
    raise Invalid(f'wait for "rollout", "exists", "deleted" or WaitFor.condition(name), not {wait_for!r}')


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise Invalid(f"the host sent JSON that does not parse: {e}") from None


def _manifest_text(manifests: Any) -> str:
    if isinstance(manifests, str):
        return manifests
    if isinstance(manifests, dict):
        return json.dumps(manifests, ensure_ascii=False, allow_nan=False)
    if isinstance(manifests, Iterable):
        return "\n---\n".join(_manifest_text(m) for m in manifests)
    raise Invalid("apply takes YAML/JSON text, a dict or a list of dicts and texts")


def apply(manifests: Union[str, dict[str, Any], Iterable[Union[str, dict[str, Any]]]]) -> builtins.list[Applied]:
    """Server-side apply of manifests: YAML or JSON text (one or many
    documents separated by ``---``, or a ``kind: List``), a dict, or a list of
    dicts and texts. Every document is checked against the policy before any
    is applied: one refused document means nothing is applied. Returns one
    :class:`Applied` per object, in order."""
    text = _manifest_text(manifests)
    return [
        Applied(o.api_version, o.kind, o.name, _action(o.action), o.resource_version)
        for o in call(_wit.kube.apply, text)
    ]


def apply_object(obj: dict[str, Any]) -> Applied:
    """Server-side apply of one object; its :class:`Applied`."""
    applied = apply(obj)
    if not applied:
        raise Invalid(f"apply of a {obj.get('kind')} returned no object")
    return applied[0]


def get(kind: KindRef, name: str) -> dict[str, Any]:
    """Reads one object; :class:`~stepbox_sdk.NotFound` if it does not exist."""
    return _parse(call(_wit.kube.get, _kind(kind), name))


def list(kind: KindRef, label_selector: Optional[str] = None) -> builtins.list[dict[str, Any]]:  # noqa: A001
    """The objects of a kind, sorted by name, optionally filtered by a label
    selector ("app=web,tier!=db", "env in (a,b)", "!legacy")."""
    return [_parse(item) for item in call(_wit.kube.list, _kind(kind), label_selector)]


def names(kind: KindRef, label_selector: Optional[str] = None) -> builtins.list[str]:
    """The sorted names of the objects of a kind matching a label selector."""
    return sorted(o["metadata"]["name"] for o in list(kind, label_selector))


def patch(kind: KindRef, name: str, merge_patch: Union[str, dict[str, Any]]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386), a dict or JSON text, of one object. Returns the patched object."""
    text = merge_patch if isinstance(merge_patch, str) else json.dumps(merge_patch, ensure_ascii=False)
    return _parse(call(_wit.kube.patch, _kind(kind), name, text))


def delete(kind: KindRef, name: str) -> bool:
    """Deletes one object. Returns False if it did not exist."""
    return call(_wit.kube.delete, _kind(kind), name)


def wait(kind: KindRef, name: str, wait_for: WaitCondition = "rollout", *, timeout: Seconds = 300) -> None:
    """Waits until ``wait_for`` holds for the object, or ``timeout`` (seconds
    or a timedelta, rounded up) passes: then :class:`~stepbox_sdk.Timeout`."""
    call(_wit.kube.wait, _kind(kind), name, _wait_for(wait_for), seconds(timeout))



def logs(
    pod: str,
    container: Optional[str] = None,
    *,
    tail_lines: Optional[int] = None,
    since: Optional[Seconds] = None,
    previous: bool = False,
) -> str:
    """The log of a container of ``pod``, as text (policy: ``get`` on
    ``pods/log``), as ``kubectl logs`` reads it: ``container`` (needed when
    the pod has several), only the last ``tail_lines``, only lines newer than
    ``since`` (seconds or a timedelta), or the ``previous`` instance after a
    restart. On the embedded namespace, which runs no containers, it is empty
    unless the pod's ``logs.stepbox.dev/CONTAINER`` annotation seeds it."""
    if tail_lines is not None and (not isinstance(tail_lines, int) or tail_lines < 0):
        raise Invalid(f"tail_lines is a whole number of lines, not {tail_lines!r}")
    options = _wit.kube.LogOptions(
        container=container or "",
        tail_lines=min(tail_lines or 0, 0xFFFFFFFF),
        since_seconds=seconds(since) if since is not None else 0,
        previous=bool(previous),
    )
    return call(_wit.kube.logs, pod, options)


def events(kind: KindRef, name: str) -> builtins.list[dict[str, Any]]:
    """The Events about one object, oldest first (policy: ``list`` on
    ``events``): what ``kubectl describe`` shows at its end. Plain dicts
    (core/v1 Event)."""
    return [_parse(e) for e in call(_wit.kube.events, _kind(kind), name)]
