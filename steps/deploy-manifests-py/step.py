"""deploy-manifests, in Python: applies every manifest of a package, the way
``kubectl apply -f DIR -R`` followed by ``kubectl rollout status`` would, but
inside the run's namespace and policy. The same inputs, outputs, log and
plan as the Rust step in ../deploy-manifests.

1. Reads the package: a kustomization (input ``kustomization``, a directory
   of the package, or the package itself when it holds a
   ``kustomization.yaml``) rendered by the host's kustomize, else every
   .yaml, .yml and .json file under /packages (recursively, sorted by path,
   hidden files and directories skipped).
2. Replaces #{Name} placeholders with the run's inputs; unknown names fail
   the run, listed per file.
3. Parses every document of every file before anything is applied.
4. Applies them all in one call, so the host checks every object against
   the policy before it applies any. With prune=true the objects carry the
   inventory's label and the inventory is applied with them.
5. With prune=true, deletes what the inventory's last run applied and the
   package no longer holds (prune.py).
6. Unless wait=false, waits for every applied Deployment, StatefulSet,
   DaemonSet and Job to roll out (complete, for a Job); when one does not,
   logs why (diagnose.py).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath
from typing import Any, Mapping

from stepbox_sdk import (
    Context,
    Invalid,
    StepFailed,
    artifact,
    bool_input,
    input,
    inputs,
    int_input,
    kube,
    kustomize,
    log,
    progress,
    set_output,
    substitute,
    with_context,
    yaml,
)

import diagnose
from prune import Inventory, inventory_id, union

PACKAGES = "/packages"
APPLIED_FILE = "/workspace/applied.json"


def run(ctx: Context) -> None:
    wait = bool_input("wait", True)
    timeout = int_input("timeout", 300)
    prune = bool_input("prune", False)
    values = inputs()

    progress(0, "reading manifests")
    directory = kustomization(PACKAGES)
    if directory is not None:
        log.info(f"rendering the kustomization {directory}")
        files, documents = 1, rendered(directory, values)
    else:
        files, documents = load(PACKAGES, values)
    if not documents:
        raise StepFailed(f"no manifests found under {PACKAGES}; pass --package DIR")
    log.debug(f"{len(documents)} documents in {files} files")
    progress(20, f"applying {len(documents)} objects")

    inventory = None
    if prune:
        name = input("inventory")
        inventory = Inventory.load(inventory_id(ctx.step_name, "default" if name is None else name))
        inventory.label(documents)
    members = Inventory.members(documents)
    manifests = list(documents)
    if inventory is not None:
        # Listing the old objects too until they are pruned: a run that
        # fails half-way leaves nothing it made out of the inventory.
        manifests.append(inventory.config_map(union(members, inventory.previous)))
    applied = kube.apply(manifests)
    if inventory is not None:
        # The inventory itself is bookkeeping, not one of the package's.
        applied.pop()
    for obj in applied:
        log.info(f"{obj.kubectl_name()} {obj.action}")
    progress(50, f"applied {len(applied)} objects")

    if inventory is not None:
        gone = inventory.gone(members)
        deleted = inventory.prune(gone)
        if gone:
            try:
                kube.apply(inventory.config_map(members))
            except Exception as e:
                raise with_context(e, "writing the inventory") from None
        set_output("pruned", str(len(deleted)))

    if wait:
        workloads = [a for a in applied if is_workload(a)]
        for i, workload in enumerate(workloads):
            name = workload.kubectl_name()
            waiting, done = ("complete", "completed") if workload.kind == "Job" else ("roll out", "rolled out")
            log.info(f"waiting for {name} to {waiting} (timeout {timeout}s)")
            try:
                kube.wait(workload.kind_ref(), workload.name, "rollout", timeout=timeout)
            except Exception as e:
                why = diagnose.rollout(workload)
                said = f" ({why}; the log has its conditions, events and container logs)" if why is not None else ""
                raise with_context(e, f"waiting for {name}{said}") from None
            progress(50 + 45 * (i + 1) // len(workloads), f"{name} {done}")

    objects = [{"apiVersion": a.api_version, "kind": a.kind, "name": a.name, "action": str(a.action)} for a in applied]
    set_output("applied", str(len(applied)))
    set_output("objects", objects)
    publish(objects)
    progress(100, "done")


def kustomization(root: str) -> str | None:
    """The kustomization to render: input ``kustomization`` (a directory of
    the package), else the package itself when it holds one; None for plain
    manifests."""
    directory = input("kustomization")
    if directory:
        while directory.startswith("./"):
            directory = directory[2:]
        directory = directory.rstrip("/")
        return directory if directory.startswith("/") else f"{root}/{directory}"
    holds_one = any(os.path.isfile(f"{root}/{f}") for f in ("kustomization.yaml", "kustomization.yml", "Kustomization"))
    return root if holds_one else None


def rendered(directory: str, values: Mapping[str, str]) -> list[Any]:
    """The documents a kustomization renders, with #{Name} placeholders filled."""
    text = kustomize.build(directory)
    try:
        return yaml.documents(substitute(text, values))
    except Exception as e:
        raise with_context(e, f"kustomization {directory}") from None


def load(root: str, values: Mapping[str, str]) -> tuple[int, list[Any]]:
    """Reads, substitutes and parses every manifest under ``root``: the number
    of files and their documents, in order."""
    files = manifest_files(root)
    texts: list[tuple[str, str]] = []
    unknown: list[str] = []
    for file in files:
        name = display_name(root, file)
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise with_context(e, f"reading {name}") from None
        try:
            texts.append((name, substitute(text, values)))
        except Invalid as e:
            unknown.append(f"{name}: {e.message}")
    if unknown:
        raise Invalid("; ".join(unknown))

    documents: list[Any] = []
    for name, text in texts:
        try:
            documents.extend(json_documents(text) if name.lower().endswith(".json") else yaml.documents(text))
        except Exception as e:
            raise with_context(e, name) from None
    return len(files), documents


def publish(objects: list[dict[str, str]]) -> None:
    """Writes the applied objects to the workspace and publishes them as the
    artifact ``applied``; a failure there is logged, not fatal: the objects
    are applied and in the outputs already."""
    try:
        with open(APPLIED_FILE, "w", encoding="utf-8") as f:
            f.write(json.dumps(objects, indent=2) + "\n")
    except OSError as e:
        log.warn(f"could not write {APPLIED_FILE}: {e}")
        return
    try:
        artifact("applied", APPLIED_FILE)
    except Exception as e:
        log.warn(f"could not publish the artifact applied: {e}")


def manifest_files(root: str) -> list[str]:
    """Every manifest file under ``root``, sorted by path component by
    component (as Rust's Path orders them). A missing ``root`` has none."""
    files: list[str] = []
    if os.path.isdir(root):
        collect(root, root, files)
    return sorted(files, key=lambda p: PurePosixPath(p).parts)


def collect(root: str, directory: str, files: list[str]) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as e:
        raise with_context(e, f"listing {display_name(root, directory)}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            collect(root, entry.path, files)
        elif is_manifest(entry.name):
            files.append(entry.path)


def is_manifest(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml", ".json"))


def display_name(root: str, path: str) -> str:
    """A path as the user knows it: relative to the package directory."""
    return path[len(root) + 1 :] if path.startswith(root + "/") else path


def json_documents(text: str) -> list[Any]:
    """The JSON values of a .json file (one, or several one after another)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    at, number = 0, 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return docs
        number += 1
        try:
            doc, at = decoder.raw_decode(text, at)
        except ValueError as e:
            raise Invalid(f"document {number}: {e}") from None
        if doc is not None:
            docs.append(doc)


def is_workload(a: kube.Applied) -> bool:
    """Objects that roll out: the workload kinds and Jobs."""
    group = a.api_version.partition("/")[0] if "/" in a.api_version else ""
    return (group == "apps" and a.kind in ("Deployment", "StatefulSet", "DaemonSet")) or (
        group == "batch" and a.kind == "Job"
    )
