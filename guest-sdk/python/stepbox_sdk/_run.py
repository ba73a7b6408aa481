"""The step's own inputs and results: inputs, secrets, outputs, progress and
artifacts (re-exported by the package: ``stepbox_sdk.require_input``, ...)."""

from __future__ import annotations

import json
import os
from typing import Any, Optional, overload

from . import _wit
from .errors import Invalid, call

_U64_MAX = 2**64 - 1


def input(name: str) -> Optional[str]:  # noqa: A001 - mirrors run::input
    """The value of input ``name``, or None if it was not given."""
    return _wit.run.input(name)


def require_input(name: str) -> str:
    """The value of input ``name``; :class:`Invalid` naming it if it was not given."""
    value = input(name)
    if value is None:
        raise Invalid(f"missing required input `{name}`: pass --input {name}=...")
    return value


def inputs() -> dict[str, str]:
    """Every input as ``{name: value}``, in name order."""
    return dict(_wit.run.inputs())


def secret(name: str) -> Optional[str]:
    """The value of secret ``name``, or None. The host masks it (``********``)
    wherever it appears, but do not log it yourself."""
    return _wit.run.secret(name)


def require_secret(name: str) -> str:
    """The value of secret ``name``; :class:`Invalid` naming it if it was not given."""
    value = secret(name)
    if value is None:
        raise Invalid(f"missing secret `{name}`: pass --secret {name}=...")
    return value


@overload
def bool_input(name: str, default: bool) -> bool: ...
@overload
def bool_input(name: str, default: None = None) -> Optional[bool]: ...
def bool_input(name: str, default: Optional[bool] = None) -> Optional[bool]:
    """Input ``name`` as a bool: true/false, yes/no, 1/0 in any case; ``default``
    when not given. Any other value is :class:`Invalid`."""
    value = input(name)
    return default if value is None else parse_bool(name, value)


@overload
def int_input(name: str, default: int) -> int: ...
@overload
def int_input(name: str, default: None = None) -> Optional[int]: ...
def int_input(name: str, default: Optional[int] = None) -> Optional[int]:
    """Input ``name`` as a whole number (0 or more); ``default`` when not
    given. Any other value is :class:`Invalid`."""
    value = input(name)
    return default if value is None else parse_int(name, value)


def parse_bool(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in ("true", "yes", "1"):
        return True
    if word in ("false", "no", "0"):
        return False
    raise Invalid(f"input `{name}` must be true or false (or yes/no, 1/0), not {_quote(value)}")


def parse_int(name: str, value: str) -> int:
    text = value.strip()
    digits = text[1:] if text.startswith("+") else text
    if digits.isascii() and digits.isdigit() and int(digits) <= _U64_MAX:
        return int(digits)
    raise Invalid(f"input `{name}` must be a whole number (0 or more), not {_quote(value)}")


def _quote(value: str) -> str:
    """A value quoted the way the Rust SDK's messages quote it ({:?})."""
    return json.dumps(value, ensure_ascii=False)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def set_output(name: str, value: Any) -> None:
    """Sets output ``name`` (a later call replaces it). Strings are kept as
    they are; anything else is written as compact JSON. :class:`LimitExceeded`
    when the run's output bytes are used up."""
    call(_wit.run.set_output, name, _text(value), False)


def set_sensitive_output(name: str, value: Any) -> None:
    """Sets a sensitive output: the run's report shows it masked."""
    call(_wit.run.set_output, name, _text(value), True)


def progress(percent: float, message: str = "") -> None:
    """Reports progress (0-100, clamped and rounded down) with a short message."""
    _wit.run.progress(max(0, min(100, int(percent))), message)


def artifact(name: str, path: "str | os.PathLike[str]") -> None:
    """Publishes the file at ``path`` (under /workspace) as the artifact ``name``."""
    call(_wit.run.artifact, name, os.fspath(path))
