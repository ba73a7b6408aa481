"""Why a rollout failed, for the run's log: what ``kubectl describe`` and a
look at the pods would tell (the Python twin of
../deploy-manifests/src/diagnose.rs, line for line the same log). For a
workload that did not roll out:

- its conditions (type, status, reason, message);
- its Events, and those of its ReplicaSets and Pods;
- each Pod's containers that are not ready (waiting, terminated,
  restarted) and the last lines of their logs (the previous instance's
  too, after a restart).

Every read is a kube call the policy decides; one refused or failing is
noted in the log and the rest goes on: a diagnosis never hides the failure
it explains.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, TypeVar

from stepbox_sdk import StepboxError, kube, log

T = TypeVar("T")

TAIL_LINES = 20
"""Log lines shown per failing container."""

MAX_PODS = 5
"""Pods looked at per workload."""


def rollout(workload: kube.Applied) -> Optional[str]:
    """Logs what explains why ``workload`` did not roll out; returns a
    one-line summary for the run's error: its first condition that is
    ``False`` and the first failing container found, when there are such."""
    name = workload.kubectl_name()
    log.warn(f"{name} did not roll out; what the cluster says:")
    obj = attempt(lambda: kube.get(workload.kind_ref(), workload.name), f"read {name}")
    if obj is None:
        return None
    summary = None
    for c in items(obj, "status", "conditions"):
        type_, status, reason, message = (text(c, f) for f in ("type", "status", "reason", "message"))
        log.warn(f"  condition {type_}={status} {reason}: {message}")
        if status == "False" and summary is None:
            summary = f"{type_} {reason}: {message}"
    events(workload.kind_ref(), workload.name, name)
    labels = selector(obj)
    if labels is None:
        return summary
    if workload.kind == "Deployment":
        for rs in list_of(kube.REPLICA_SET, labels):
            rs_name = name_of(rs)
            if owned_by(rs, workload.name):
                events(kube.REPLICA_SET, rs_name, f"replicaset.apps/{rs_name}")
    container = None
    for p in list_of(kube.POD, labels)[:MAX_PODS]:
        why = pod(p)
        if container is None:
            container = why
    if summary is not None and container is not None:
        return f"{summary}; {container}"
    return summary if summary is not None else container


def pod(p: Any) -> Optional[str]:
    """Logs a pod's Events and its failing containers with their last lines;
    returns why its first failing container fails."""
    pod_name = name_of(p)
    shown = f"pod/{pod_name}"
    phase = dig(p, "status", "phase")
    log.warn(f"  {shown} is {phase if isinstance(phase, str) else '?'}")
    events(kube.POD, pod_name, shown)
    first = None
    for status in items(p, "status", "containerStatuses"):
        container = text(status, "name")
        ready = dig(status, "ready") is True
        restarts = dig(status, "restartCount")
        if not (isinstance(restarts, int) and not isinstance(restarts, bool) and restarts >= 0):
            restarts = 0
        if ready and restarts == 0:
            continue
        state = state_of(status)
        log.warn(f"  {shown} container {container}: {state}, {restarts} restarts")
        if first is None:
            first = f"container {container} of {shown}: {state}"
        what = f"the log of {shown} container {container}"
        lines = attempt(
            lambda: kube.logs(pod_name, container, tail_lines=TAIL_LINES, previous=restarts > 0),
            f"read {what}",
        )
        if lines is None:
            continue
        if not lines.strip():
            log.warn(f"  {shown} container {container}: no log lines")
        else:
            log.warn(f"  last lines of {shown} container {container}:")
            for line in rust_lines(lines):
                log.warn(f"    {line}")
    return first


def state_of(status: Any) -> str:
    """A container's state as ``waiting CrashLoopBackOff back-off ...``;
    empty when it has none."""
    state = dig(status, "state")
    if not isinstance(state, dict) or not state:
        return ""
    which, detail = next(iter(state.items()))
    return f"{which} {text(detail, 'reason')} {text(detail, 'message')}".strip()


def events(kind: kube.KindRef, name: str, shown: str) -> None:
    """Logs the Events about one object."""
    for e in attempt(lambda: kube.events(kind, name), f"read the events of {shown}") or []:
        count = dig(e, "count")
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            count = 1
        log.warn(f"  event {shown}: {text(e, 'type')} {text(e, 'reason')} (x{count}): {text(e, 'message')}")


def selector(obj: Any) -> Optional[str]:
    """The workload's pod selector as a label selector string."""
    labels = dig(obj, "spec", "selector", "matchLabels")
    if not isinstance(labels, dict):
        return None
    parts = [f"{k}={v}" for k, v in labels.items() if isinstance(v, str)]
    return ",".join(parts) if parts else None


def list_of(kind: kube.KindRef, labels: str) -> list[Any]:
    return attempt(lambda: kube.list(kind, labels), f"list {kind} with {labels}") or []


def attempt(f: Callable[[], T], what: str) -> Optional[T]:
    """``f()``, or None when the host refuses or fails it (logged as
    "cannot WHAT: why"). Other exceptions are the step's bugs and propagate."""
    try:
        return f()
    except StepboxError as e:
        log.warn(f"  cannot {what}: {e}")
        return None


def rust_lines(s: str) -> list[str]:
    """The lines of a text as Rust's ``str::lines`` gives them (only ``\\n``
    ends a line, a ``\\r`` before it is dropped)."""
    lines = s.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def dig(v: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(v, dict):
            return None
        v = v.get(key)
    return v


def text(v: Any, field: str) -> str:
    found = dig(v, field)
    return found if isinstance(found, str) else ""


def items(v: Any, *path: str) -> Iterable[Any]:
    found = dig(v, *path)
    return found if isinstance(found, list) else []


def name_of(v: Any) -> str:
    found = dig(v, "metadata", "name")
    return found if isinstance(found, str) else ""


def owned_by(v: Any, owner: str) -> bool:
    return any(dig(o, "name") == owner for o in items(v, "metadata", "ownerReferences"))
