"""The Python twin of tests/guests/observe: a container's log (inputs pod,
container, tail, previous), the Events about an object (api-version, kind,
name) and a kustomization rendered (kustomization), as the outputs log,
events and rendered."""

from __future__ import annotations

from stepbox_sdk import Context, bool_input, input, int_input, kube, kustomize, set_output


def run(ctx: Context) -> None:
    pod = input("pod")
    if pod is not None:
        tail = int_input("tail", 0)
        set_output(
            "log",
            kube.logs(pod, input("container"), tail_lines=tail or None, previous=bool_input("previous", False)),
        )
    name = input("name")
    if name is not None:
        kind = kube.KindRef(input("api-version") or "v1", input("kind") or "")
        lines = [f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}" for e in kube.events(kind, name)]
        set_output("events", "\n".join(lines))
    directory = input("kustomization")
    if directory is not None:
        set_output("rendered", kustomize.build(directory))
