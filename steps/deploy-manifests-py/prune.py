"""Pruning: what an earlier run applied and the package no longer holds is
deleted, as ``kubectl apply --prune`` does with an ApplySet. The Python twin
of ../deploy-manifests/src/prune.rs: the same inventory, so a run of any of
the three ports prunes what another one applied.

The inventory is kept in the namespace: a ConfigMap (the ApplySet's parent)
named ``stepbox-inventory.STEP.ID`` lists the objects the last run applied
(``data.objects``, compact JSON ``[{"apiVersion","kind","name"}]``), and
every one of them carries the label ``stepbox.dev/inventory: STEP.ID``. A
run with ``prune=true``:

1. reads the inventory (none: nothing to prune);
2. labels its objects and applies them with the inventory listing the old
   and the new objects, in one apply;
3. deletes each old object that is not in the package any more, only when
   it still carries this inventory's label (an object someone else made, or
   took over, is never touched: it is logged and kept);
4. writes the inventory again, listing the objects of this run only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from stepbox_sdk import Invalid, NotFound, StepboxError, kube, log, with_context

LABEL = "stepbox.dev/inventory"
"""The label every object of an inventory carries."""

MAX_LABEL_VALUE = 63
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True, order=True)
class Member:
    """One object of an inventory (ordered as the Rust step sorts them)."""

    api_version: str
    kind: str
    name: str

    @staticmethod
    def of(doc: Any) -> Optional["Member"]:
        """The member a manifest makes, or None when it names no object."""
        if not isinstance(doc, dict):
            return None
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return Member._checked(doc.get("apiVersion"), doc.get("kind"), name)

    @staticmethod
    def listed(v: Any) -> Optional["Member"]:
        """A member as the inventory lists it."""
        if not isinstance(v, dict):
            return None
        return Member._checked(v.get("apiVersion"), v.get("kind"), v.get("name"))

    @staticmethod
    def _checked(api_version: Any, kind: Any, name: Any) -> Optional["Member"]:
        if all(isinstance(s, str) for s in (api_version, kind, name)):
            return Member(api_version, kind, name)
        return None

    @property
    def group(self) -> str:
        return self.api_version.partition("/")[0] if "/" in self.api_version else ""

    def same(self, other: "Member") -> bool:
        """Same object: group, kind and name (the version may change)."""
        return (self.group, self.kind, self.name) == (other.group, other.kind, other.name)

    def kubectl_name(self) -> str:
        return kube.kubectl_name(self.api_version, self.kind, self.name)

    def listing(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


def inventory_id(step: str, inventory: str) -> str:
    """``STEP.ID`` checked as a label value."""
    value = f"{step}.{inventory}"
    if len(value.encode()) <= MAX_LABEL_VALUE and _LABEL_VALUE.fullmatch(value):
        return value
    room = max(0, MAX_LABEL_VALUE - (len(step.encode()) + 1))
    raise Invalid(
        f"input inventory: {_quote(inventory)} with step name {_quote(step)} makes {_quote(value)}, "
        f"not a label value: use letters, digits, '-', '_' and '.', at most {room} characters"
    )


def _quote(value: str) -> str:
    """Quoted as the Rust step quotes it (``{:?}``)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Inventory:
    """The inventory of one step and id."""

    id: str
    """The label value (``STEP.ID``)."""
    name: str
    """The parent ConfigMap's name."""
    previous: list[Member]
    """What the last run applied."""

    @staticmethod
    def load(inventory: str) -> "Inventory":
        """Reads the inventory ``inventory`` (empty when there is none yet)."""
        name = f"stepbox-inventory.{inventory}".lower()
        try:
            cm = kube.get(kube.CONFIG_MAP, name)
        except NotFound:
            return Inventory(inventory, name, [])
        except StepboxError as e:
            raise with_context(e, f"reading the inventory {name}") from None
        data = cm.get("data")
        objects = data.get("objects") if isinstance(data, dict) else None
        try:
            listed = json.loads(objects if isinstance(objects, str) else "[]")
            if not isinstance(listed, list):
                raise ValueError(f"a {type(listed).__name__}, not a list")
        except ValueError as e:
            raise Invalid(f"ConfigMap {name} data.objects is not the JSON list stepbox writes: {e}") from None
        return Inventory(inventory, name, [m for m in map(Member.listed, listed) if m is not None])

    def label(self, docs: list[Any]) -> None:
        """Labels ``docs`` as members of this inventory."""
        for doc in docs:
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if not isinstance(meta, dict):
                continue
            labels = meta.setdefault("labels", {})
            if isinstance(labels, dict):
                labels[LABEL] = self.id

    def config_map(self, members: list[Member]) -> dict[str, Any]:
        """The parent ConfigMap listing ``members``."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "labels": {"applyset.kubernetes.io/id": self.id.replace(".", "-")},
                "annotations": {"stepbox.dev/inventory-of": self.id},
            },
            "data": {"objects": compact([m.listing() for m in members])},
        }

    @staticmethod
    def members(docs: list[Any]) -> list[Member]:
        """The members of ``docs``."""
        return [m for m in map(Member.of, docs) if m is not None]

    def gone(self, current: list[Member]) -> list[Member]:
        """The old members the package no longer holds."""
        return [old for old in self.previous if not any(m.same(old) for m in current)]

    def prune(self, gone: list[Member]) -> list[Member]:
        """Deletes ``gone``, each only if it still carries this inventory's
        label; returns the members deleted."""
        deleted = []
        for m in gone:
            kind = kube.KindRef(m.api_version, m.kind)
            name = m.kubectl_name()
            try:
                current = kube.get(kind, m.name)
            except NotFound:
                log.info(f"{name} is already gone")
                continue
            except StepboxError as e:
                raise with_context(e, f"pruning {name}") from None
            meta = current.get("metadata")
            labels = meta.get("labels") if isinstance(meta, dict) else None
            label = labels.get(LABEL) if isinstance(labels, dict) else None
            if label != self.id:
                log.warn(f"{name} is not pruned: it no longer carries {LABEL}={self.id} (someone else manages it now)")
                continue
            try:
                removed = kube.delete(kind, m.name)
            except StepboxError as e:
                raise with_context(e, f"pruning {name}") from None
            if removed:
                log.info(f"{name} deleted (pruned: no longer in the package)")
                deleted.append(m)
        return deleted


def compact(value: Any) -> str:
    """JSON as serde_json writes it: no spaces, no escapes beyond JSON's."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def union(a: list[Member], b: list[Member]) -> list[Member]:
    """``a`` with the members of ``b`` it does not hold, sorted (once each)."""
    return sorted(set(a) | {m for m in b if not any(x.same(m) for x in a)})
