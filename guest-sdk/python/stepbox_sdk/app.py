"""The component's entry module: ``componentize-py ... componentize
stepbox_sdk.app`` builds this, and it calls ``run(ctx)`` of the step's own
module ``step`` (``step.py`` in the step directory) for the world's ``run``
export. Not for steps to import.
"""

from __future__ import annotations

import traceback

from . import Context, log
from ._wit import Err
from .errors import StepboxError, describe

import step as _step  # the step's module, imported (and snapshotted) at build time

if not callable(getattr(_step, "run", None)):
    # Fails the build (this module is imported when the component is made).
    raise ImportError("step.py has no function run(ctx): write `def run(ctx: Context) -> None: ...`")


def _call_step(ctx: Context) -> None:
    _step.run(ctx)


class WitWorld:
    """The world's export: runs the step and turns an exception into the
    export's error text."""

    def run(self, ctx: object) -> None:
        context = Context(
            namespace=ctx.namespace,  # type: ignore[attr-defined]
            step_name=ctx.step_name,  # type: ignore[attr-defined]
            run_id=ctx.run_id,  # type: ignore[attr-defined]
            dry_run=ctx.dry_run,  # type: ignore[attr-defined]
        )
        try:
            _call_step(context)
        except StepboxError as e:
            raise Err(str(e)) from None
        except SystemExit as e:
            if e.code in (None, 0):
                return
            raise Err(f"the step exited with status {e.code}") from None
        except Exception as e:  # noqa: BLE001 - every failure ends the run with its text
            log.error("".join(traceback.format_exception(e)).rstrip())
            raise Err(describe(e)) from None
