"""The one error type of every SDK call.

Capability calls fail with the host's error variant, raised as a subclass
of :class:`StepboxError` per kind (:class:`Forbidden`, :class:`NotFound`,
...); each carries ``kind`` (the WIT case name, e.g. ``"forbidden"``) and
``message`` (the host's text, secrets already masked). A policy denial is an
ordinary exception a step may handle::

    from stepbox_sdk import kube, log, NotFound

    try:
        settings = kube.get(kube.CONFIG_MAP, "settings")
    except NotFound:
        log.info("no settings yet")
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from . import _wit

T = TypeVar("T")


class StepboxError(Exception):
    """Why a call (or the step) failed.

    ``str(e)`` is ``"<kind>: <message>"`` (e.g. ``"forbidden: ClusterRole is
    cluster-scoped"``), or the bare message for kind ``"step"``: that is the
    text a run fails with when the exception leaves ``run``.
    """

    kind: str = "step"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message if self.kind == "step" else f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def with_context(self, context: object) -> "StepboxError":
        """The same kind of error with ``context`` put before its message."""
        error = type(self)(f"{context}: {self.message}")
        error.__cause__ = self
        return error

    @staticmethod
    def of_kind(kind: str, message: str) -> "StepboxError":
        """The error class for a kind name (``"not-found"`` -> :class:`NotFound`)."""
        cls = _BY_KIND.get(kind)
        if cls is None:
            raise ValueError(f"unknown error kind {kind!r}")
        return cls(message)


class Forbidden(StepboxError):
    """The run's policy does not allow the call. Nothing was changed."""

    kind = "forbidden"


class NotFound(StepboxError):
    """The object, file or input does not exist."""

    kind = "not-found"


class Conflict(StepboxError):
    """The object was changed by someone else, or a field is owned by another field manager."""

    kind = "conflict"


class Invalid(StepboxError):
    """The request is malformed: bad YAML, missing kind, bad label selector, a bad input value."""

    kind = "invalid"


class Timeout(StepboxError):
    """A wait did not finish in time."""

    kind = "timeout"


class Unavailable(StepboxError):
    """The backend (API server, helm) could not be reached or failed."""

    kind = "unavailable"


class LimitExceeded(StepboxError):
    """A limit of the run was reached (output bytes, object size, ...)."""

    kind = "limit-exceeded"


class StepFailed(StepboxError):
    """The step's own failure: ``raise StepFailed("the database is not reachable")``."""

    kind = "step"


_BY_KIND: dict[str, type[StepboxError]] = {
    c.kind: c for c in (Forbidden, NotFound, Conflict, Invalid, Timeout, Unavailable, LimitExceeded, StepFailed)
}

_WIT_CASES = {
    "Error_Forbidden": Forbidden,
    "Error_NotFound": NotFound,
    "Error_Conflict": Conflict,
    "Error_Invalid": Invalid,
    "Error_Timeout": Timeout,
    "Error_Unavailable": Unavailable,
    "Error_LimitExceeded": LimitExceeded,
}


def call(f: Callable[..., T], *args: Any) -> T:
    """Calls a WIT import, raising its ``error`` value as a :class:`StepboxError`."""
    try:
        return f(*args)
    except _wit.Err as e:
        case = getattr(e, "value", None)
        cls = _WIT_CASES.get(type(case).__name__)
        if cls is None:
            raise
        raise cls(str(case.value)) from None


def with_context(error: BaseException, context: object) -> StepboxError:
    """Adds context to any exception: a StepboxError keeps its kind, a
    ``FileNotFoundError`` becomes :class:`NotFound` (as a missing file is in
    the Rust SDK), anything else :class:`StepFailed`."""
    if isinstance(error, StepboxError):
        return error.with_context(context)
    cls = NotFound if isinstance(error, FileNotFoundError) else StepFailed
    wrapped = cls(f"{context}: {describe(error)}")
    wrapped.__cause__ = error
    return wrapped


def describe(error: BaseException) -> str:
    """The text a run fails with for an exception that left ``run``."""
    if isinstance(error, StepboxError):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"{type(error).__name__}: {error.strerror or error}: {error.filename}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
