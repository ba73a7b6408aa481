"""The hostile cases that apply to any guest, for CPython in a component.
The input ``case`` picks one:

- other-namespace: applies a ConfigMap into kube-system and catches the
  refusal; outputs ``outcome`` (the error kind, or "ok") and ``message``.
- other-namespace-uncaught: the same without catching: the run fails.
- secret-echo: puts the secret ``token`` in the log, stdout, stderr, an
  output, a sensitive output and finally the run's error.
- infinite-loop: spins without calling the host.
- memory-bomb: allocates 1 MiB buffers, touching every page, forever.
- fs-outside: reads and writes outside /packages and /workspace; outputs one
  "allowed"/"<ExceptionType>: <message>" per attempt.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from stepbox_sdk import Context, StepboxError, StepFailed, Invalid, kube, log, require_input, require_secret
from stepbox_sdk import set_output, set_sensitive_output

SNEAKY = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sneaky", "namespace": "kube-system"}, "data": {"a": "b"}}


def run(ctx: Context) -> None:
    case = require_input("case")
    if case == "other-namespace":
        try:
            kube.apply(SNEAKY)
            set_output("outcome", "ok")
            set_output("message", "")
        except StepboxError as e:
            set_output("outcome", e.kind)
            set_output("message", e.message)
    elif case == "other-namespace-uncaught":
        kube.apply(SNEAKY)
    elif case == "secret-echo":
        token = require_secret("token")
        log.info(f"the token is {token}")
        print(f"stdout: the token is {token}")
        print(f"stderr: the token is {token}", file=sys.stderr)
        set_output("leak", token)
        set_sensitive_output("token", token)
        raise StepFailed(f"failing on purpose with the token {token} in the message")
    elif case == "infinite-loop":
        n = 0
        while True:
            n = (n + 1) & 0xFFFFFFFF
    elif case == "memory-bomb":
        chunks: list[bytearray] = []
        while True:
            chunk = bytearray(1 << 20)
            for i in range(0, len(chunk), 4096):
                chunk[i] = 1
            chunks.append(chunk)
            if len(chunks) % 64 == 0:
                log.info(f"{len(chunks)} MiB allocated")
    elif case == "fs-outside":
        attempt("etc-passwd", lambda: open("/etc/passwd").read())
        attempt("dotdot", lambda: open("/workspace/../../etc/passwd").read())
        attempt("packages-dotdot", lambda: os.listdir("/packages/.."))
        attempt("root-listing", lambda: os.listdir("/"))
        attempt("packages-write", lambda: open("/packages/x", "w").write("x"))
        attempt("workspace-write", lambda: open("/workspace/ok.txt", "w").write("written"))
        set_output("namespace", ctx.namespace)
    else:
        raise Invalid(f"unknown case {case!r}")


def attempt(name: str, f: Callable[[], Any]) -> None:
    try:
        result = f()
        set_output(name, "allowed" if not isinstance(result, list) else f"allowed: {sorted(result)}")
    except Exception as e:  # noqa: BLE001 - every outcome is reported
        set_output(name, f"{type(e).__name__}: {e}")
