"""YAML manifests to plain values and back, read the way the host and the
Rust SDK read them (YAML 1.2 core schema as serde_yaml_ng resolves it): only
true/false are booleans (not yes/no/on/off), ``0755`` is a string, ``0o755``,
``0x1F`` and ``0b101`` are integers, ``.inf`` and ``.nan`` become None (as
they do in JSON), merge keys (``<<: *base``) are applied, duplicate keys are
an error, and no dates are made (``2024-01-01`` stays a string).

>>> documents("a: 0755\\nb: yes\\n---\\n---\\nc: 0x1F\\n")
[{'a': '0755', 'b': 'yes'}, {'c': 31}]
"""

from __future__ import annotations

import re
from typing import Any

import yaml as _pyyaml

from .errors import Invalid

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


class _Loader(_pyyaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema resolution of serde_yaml_ng."""

    yaml_implicit_resolvers: dict = {}

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        # PyYAML keeps the last of duplicate keys; serde_yaml_ng refuses them.
        if isinstance(node, _pyyaml.MappingNode):
            self.flatten_mapping(node)
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue
                if duplicate:
                    raise _pyyaml.constructor.ConstructorError(
                        None, None, f"duplicate entry with key {key!r}", key_node.start_mark
                    )
        return super().construct_mapping(node, deep=deep)


def _resolver(tag: str, pattern: str, first: str) -> None:
    _Loader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_resolver(_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_resolver(_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])
_resolver(_INT, r"^(?:[-+]?0(?:x[0-9a-fA-F]+|o[0-7]+|b[01]+)|[-+]?(?:0|[1-9][0-9]*))$", "-+0123456789")
_resolver(
    _FLOAT,
    r"^(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    "-+0123456789.",
)
_resolver("tag:yaml.org,2002:merge", r"^(?:<<)$", "<")


def _construct_int(loader: _Loader, node: Any) -> Any:
    text = loader.construct_scalar(node)
    try:
        return int(text, 0)
    except ValueError:
        return text


def _construct_float(loader: _Loader, node: Any) -> Any:
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", text):
        return None  # JSON has no infinities: the Rust SDK and the host make them null too.
    if re.fullmatch(r"[-+]?0[0-9]+", text):
        return text  # digits with a leading zero are a string
    try:
        return float(text)
    except ValueError:
        return text


def _construct_bool(loader: _Loader, node: Any) -> bool:
    return loader.construct_scalar(node).lower() == "true"


_Loader.add_constructor(_INT, _construct_int)
_Loader.add_constructor(_FLOAT, _construct_float)
_Loader.add_constructor(_BOOL, _construct_bool)
# Timestamps are strings, as in the host.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _pyyaml.SafeLoader.construct_yaml_str)


def _describe(e: Exception) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e)
    if mark is not None:
        return f"{problem} at line {mark.line + 1} column {mark.column + 1}"
    return str(problem)


def documents(text: str) -> list[Any]:
    """Parses YAML text of one or many documents (separated by ``---``) into
    plain values, in order. Empty and null documents are skipped; merge keys
    are applied. A parse error is :class:`~stepbox_sdk.Invalid` naming the
    document's number (from 1) and the line."""
    docs: list[Any] = []
    loader = _Loader(text)
    number = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                number += 1
                node = loader.get_node()
                value = loader.construct_document(node) if node is not None else None
            except _pyyaml.YAMLError as e:
                raise Invalid(f"document {max(number, 1)}: {_describe(e)}") from None
            if value is not None:
                docs.append(value)
    finally:
        loader.dispose()
    return docs


def dumps(value: Any) -> str:
    """Serializes a value (dicts, lists, scalars) as one YAML document (no leading ``---``)."""
    return _pyyaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
