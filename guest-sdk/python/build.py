#!/usr/bin/env python3
"""Builds a Python step directory into a stepbox step component.

``stepbox build DIR`` runs this with the toolchain it installed (see
../BUILDING.md); it also runs by hand::

    python3 guest-sdk/python/build.py --step DIR --out FILE.wasm --toolchain CACHE [--wit WIT_DIR] [--work DIR]

    --step DIR        the step directory: step.py with run(ctx), and optionally
                      requirements.txt (pure-Python packages only)
    --out FILE        where the component goes
    --toolchain DIR   holds tools/ (componentize-py) and site/ (the SDK's own
                      dependencies), installed from toolchain/*.txt
    --wit DIR         the stepbox:step WIT (default: ../../wit from here)
    --work DIR        scratch directory, kept (default: a temp dir, removed)

What it does:

1. Checks DIR/step.py exists.
2. If DIR/requirements.txt exists, installs it with pip into WORK/deps
   (``--only-binary=:all:`` is not forced; a package with a native extension
   will build but fail at run time: use pure-Python packages).
3. Copies DIR and this SDK's ``stepbox_sdk`` into WORK (componentize-py's
   CPython writes ``__pycache__`` into the directories it is given).
4. Runs componentize-py (from TOOLCHAIN/tools) for world ``step`` of the WIT
   directory (or, when a ``.py`` file of DIR imports ``stepbox_sdk.http``,
   for world ``stepbox:step-py/step-http``, which adds
   ``wasi:http/outgoing-handler``: WORK/wit assembles ``wit/step-py.wit``
   of this SDK, the stepbox WIT and the WASI packages in ``wit/deps``), app module ``stepbox_sdk.app`` (which imports ``step`` and
   exports the world's ``run``), with the Python path: WORK/step, WORK/deps,
   WORK/sdk, TOOLCHAIN/site. ``VIRTUAL_ENV`` is removed from the environment
   so no other site-packages are searched first.

Prints the component's path as the last line of stdout; exit code 1 and a
message on stderr on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent
APP_MODULE = "stepbox_sdk.app"
WORLD = "step"
HTTP_WORLD = "stepbox:step-py/step-http"
# `from stepbox_sdk import http`, `from stepbox_sdk import (kube, http)`,
# `import stepbox_sdk.http`, `from stepbox_sdk.http import get`.
USES_HTTP = re.compile(r"from\s+stepbox_sdk\s+import\s+\(?[^)\n]*\bhttp\b|\bstepbox_sdk\.http\b")


def uses_http(step_dir: Path) -> bool:
    """Whether a Python file of the step imports ``stepbox_sdk.http``."""
    for source in step_dir.rglob("*.py"):
        if any(part.startswith(".") or part in ("target", "node_modules") for part in source.parts):
            continue
        if USES_HTTP.search(source.read_text(encoding="utf-8", errors="replace")):
            return True
    return False


def http_wit(wit: Path, work: Path) -> Path:
    """One WIT directory for the HTTP world: this SDK's step-py.wit, the
    stepbox WIT as a dependency and the WASI packages it names."""
    out = work / "wit"
    (out / "deps").mkdir(parents=True, exist_ok=True)
    shutil.copy(SDK_DIR / "wit" / "step-py.wit", out / "step-py.wit")
    shutil.copytree(wit, out / "deps" / "stepbox-step", ignore=shutil.ignore_patterns("deps"))
    for dep in (SDK_DIR / "wit" / "deps").iterdir():
        shutil.copytree(dep, out / "deps" / dep.name)
    return out


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a Python step into a stepbox component.")
    parser.add_argument("--step", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--toolchain", required=True)
    parser.add_argument("--wit", default=str(SDK_DIR.parent.parent / "wit"))
    parser.add_argument("--work")
    args = parser.parse_args()

    step_dir = Path(args.step).resolve()
    out = Path(args.out).resolve()
    toolchain = Path(args.toolchain).resolve()
    wit = Path(args.wit).resolve()
    tools, site = toolchain / "tools", toolchain / "site"

    if not (step_dir / "step.py").is_file():
        fail(f"no step.py in {step_dir}: a Python step is a module step.py with a function run(ctx)")
    if not (tools / "componentize_py").is_dir():
        fail(f"no componentize-py in {tools}: pip install --target {tools} -r {SDK_DIR / 'toolchain' / 'requirements-tools.txt'}")
    if not (site / "yaml").is_dir():
        fail(f"no PyYAML in {site}: pip install --target {site} --no-deps -r {SDK_DIR / 'toolchain' / 'requirements-sdk.txt'}")

    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="stepbox-py-build-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    try:
        started = time.monotonic()
        # componentize-py's CPython writes __pycache__ into every directory on
        # its path while it pre-initializes: give it copies, not the sources.
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "target", "node_modules")
        shutil.copytree(step_dir, work / "step", ignore=skip)
        shutil.copytree(SDK_DIR / "stepbox_sdk", work / "sdk" / "stepbox_sdk", ignore=skip)
        path = [work / "step"]
        requirements = step_dir / "requirements.txt"
        if requirements.is_file():
            deps = work / "deps"
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(deps), "-r", str(requirements)],
                check=True, env=env,
            )
            path.append(deps)
        path += [work / "sdk", site]

        wit_dir, world = (http_wit(wit, work), HTTP_WORLD) if uses_http(step_dir) else (wit, WORLD)
        command = [
            sys.executable, "-c", "import sys; from componentize_py import script; sys.exit(script())",
            "-d", str(wit_dir), "-w", world, "componentize", APP_MODULE,
        ]
        for p in path:
            command += ["-p", str(p)]
        command += ["-o", str(out)]
        out.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(command, env={**env, "PYTHONPATH": str(tools)}, cwd=work,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            # Python's traceback is what helps; componentize-py's own Rust backtrace is not.
            message = result.stdout.split("Stack backtrace:")[0].strip()
            stub = re.search(r"called trapping stub: (\S+)", result.stdout)
            if stub:
                fail(f"step.py called {stub.group(1)} while the component was built: its top-level code runs at "
                     "build time, where host calls (input, kube, helm, ...) trap; make them inside run(ctx)")
            fail(f"componentize-py failed:\n{message}")
        size = out.stat().st_size
        print(f"built step.py: component {size / 1048576:.1f} MiB in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
        print(out)
    except subprocess.CalledProcessError as e:
        fail(f"{' '.join(e.cmd[:4])} ... failed with exit code {e.returncode}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
