"""``#{Name}`` placeholders in manifest text."""

from __future__ import annotations

import re
from typing import Mapping, Optional

from .errors import Invalid

_END = re.compile(r"[}{#\n\r]")


def substitute(template: str, inputs: Mapping[str, str]) -> str:
    """Replaces every ``#{Name}`` in ``template`` with ``inputs[Name]``, on
    the raw text, so a placeholder may stand anywhere, even where YAML would
    read ``#`` as a comment (``replicas: #{replicas}``).

    - The name is the text between ``#{`` and the next ``}``, stripped; it may
      not hold ``{``, ``#`` or a line break (such text is left as it is).
    - ``##{Name}`` is an escape: it becomes a literal ``#{Name}``.
    - Unknown names raise :class:`~stepbox_sdk.Invalid` listing all of them,
      sorted and once each; nothing is replaced then.

    >>> substitute("image: #{image} # not ##{image}", {"image": "nginx:1.27"})
    'image: nginx:1.27 # not #{image}'
    """
    out: list[str] = []
    unknown: set[str] = set()
    rest = template
    while True:
        at = rest.find("#")
        if at < 0:
            break
        out.append(rest[:at])
        rest = rest[at:]
        if rest.startswith("##{"):
            out.append("#{")
            rest = rest[3:]
            continue
        found = _placeholder(rest)
        if found is None:
            out.append("#")
            rest = rest[1:]
            continue
        name, rest = found
        value = inputs.get(name)
        if value is None:
            unknown.add(name)
        else:
            out.append(value)
    out.append(rest)
    if unknown:
        names = sorted(unknown, key=lambda n: n.encode())
        raise Invalid(f"unknown inputs: {', '.join(names)} (pass them with --input NAME=VALUE)")
    return "".join(out)


def _placeholder(text: str) -> Optional[tuple[str, str]]:
    """``#{name}...`` at the start of ``text``: the stripped name and the text after the brace."""
    if not text.startswith("#{"):
        return None
    body = text[2:]
    end = _END.search(body)
    if end is None or end.group() != "}":
        return None
    name = body[: end.start()].strip()
    return (name, body[end.end() :]) if name else None
