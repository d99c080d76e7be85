"""``{key}`` templates filled from an item's input: URLs, headers, command arguments.

Only plain names and dotted paths into nested mappings (``{order.id}``) are allowed: no
attribute access, no indexing, no format specs, so a template in a spec can read the item's
input and nothing else (``str.format`` would let ``{x.__class__}`` through). ``{{`` and ``}}``
are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from yawlflow._errors import ConnectorError

__all__ = ("check_template", "fill")

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


def check_template(template: str) -> None:
    """Raise ``ValueError`` (with the fix) when ``template`` has a field that is not a plain name."""
    for match in _FIELD.finditer(template):
        text = match.group(0)
        if text in ("{{", "}}"):
            continue
        if match.group(1) is None:
            raise ValueError(f"template {template!r}: a lone {text!r}; write {text * 2!r} for a literal brace")
        if not _NAME.match(match.group(1)):
            raise ValueError(
                f"template {template!r}: field {{{match.group(1)}}} is not a name; write {{key}} or {{key.sub}} "
                "(keys of the item's input)"
            )


def fill(template: str, values: Mapping[str, Any], *, quote: Callable[[str], str] = str, connector: str = "") -> str:
    """``template`` with each ``{key}`` replaced by ``quote(str(values[key]))``.

    Raises:
        ConnectorError: a key is missing from ``values`` (not retryable: the input lacks it).
    """

    def one(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "{{":
            return "{"
        if text == "}}":
            return "}"
        key = match.group(1)
        value: Any = values
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                keys = ", ".join(sorted(values)) or "none"
                raise ConnectorError(
                    f"connector {connector!r}: template {template!r} needs {{{key}}}, which the item's input "
                    f"lacks (its keys: {keys}); map it in with the task's `input:`",
                    connector=connector or None,
                )
            value = value[part]
        return quote(str(value))

    return _FIELD.sub(one, template)
