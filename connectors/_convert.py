"""Raw mappings (from a spec or a configuration) to Structs, with errors that name the place and the fix.

msgspec says what is wrong and where under the value it was given (``Expected `str`, got `int` -
at `$.url```); this module puts that under the caller's path (``$.nets.main.tasks.fetch.run.config``)
and adds the fix: the nearest field name for a typo, the missing field's type, the fields the
struct takes.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar

import msgspec

from ._errors import ConnectorConfigError

__all__ = ("Seconds", "convert", "describe_fields")

S = TypeVar("S", bound=msgspec.Struct)

_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


class Seconds(float):
    """A duration in seconds, for config and policy fields.

    Written as a number of seconds (``2.5``) or as a spec duration (``"10s"``, ``"100ms"``,
    ``"1h30m"``, ``"PT30S"``); :func:`convert` (and so ``validate_config``) accepts both.
    """

    __slots__ = ()


def _dec_hook(cls: type, value: Any) -> Any:
    if cls is Seconds:
        # the spec package loads YAML, CEL and numpy: import it only when a duration is written
        from yawlflow._spec._duration import DURATION_HINT, parse_duration

        if isinstance(value, bool):
            raise ValueError(f"expected a duration, got {value!r}: {DURATION_HINT}")
        if isinstance(value, (int, float)):
            if value < 0:
                raise ValueError(f"expected a non-negative duration, got {value!r}")
            return Seconds(value)
        if isinstance(value, str):
            try:
                return Seconds(parse_duration(value) / 1e9)
            except ValueError as exc:
                raise ValueError(f"{exc}: {DURATION_HINT}") from None
        raise ValueError(f"expected a duration, got {type(value).__name__}: {DURATION_HINT}")
    raise TypeError(f"yawlflow.connectors cannot decode a value into {cls!r}")


def _structs_in(tp: Any) -> list[type[msgspec.Struct]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    return [t for arg in getattr(tp, "__args__", ()) for t in _structs_in(arg)]


def _type_name(tp: Any) -> str:
    if tp is Seconds:
        return "duration"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "{" + ", ".join(f.encode_name for f in msgspec.structs.fields(tp)) + "}"
    if isinstance(tp, type) and not getattr(tp, "__args__", None):
        return "None" if tp is type(None) else tp.__name__
    args = getattr(tp, "__args__", None)
    if args and (type(tp).__name__ == "UnionType" or repr(tp).startswith("typing.Union")):
        return " | ".join(_type_name(a) for a in args or ())
    text = repr(tp).replace("typing.", "").replace("collections.abc.", "")
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", text.replace("NoneType", "None"))


def describe_fields(cls: type[msgspec.Struct]) -> str:
    """The fields of ``cls`` as a spec author writes them: ``url: str, method: str = 'GET'``."""
    parts = []
    for f in msgspec.structs.fields(cls):
        text = f"{f.encode_name}: {_type_name(f.type)}"
        default = f.default if f.default is not msgspec.NODEFAULT else (
            f.default_factory() if f.default_factory is not msgspec.NODEFAULT else msgspec.NODEFAULT
        )
        if default is not msgspec.NODEFAULT and not isinstance(default, msgspec.Struct):
            text += f" = {float(default) if isinstance(default, Seconds) else default!r}"
        parts.append(text)
    return ", ".join(parts) or "no fields"


def _container(cls: type[msgspec.Struct], at: str) -> tuple[type[msgspec.Struct], str]:
    """The innermost struct on the path ``at`` (``.retry.attempts``), and the path to it."""
    current, path = cls, ""
    for name in re.findall(r"\.([^.\[]+)", at):
        fields = {f.encode_name: f for f in msgspec.structs.fields(current)}
        inner = _structs_in(fields[name].type) if name in fields else []
        if len(inner) != 1:
            break
        current, path = inner[0], f"{path}.{name}"
    return current, path


def convert(raw: object, cls: type[S], where: str, *, what: str, connector: str | None = None) -> S:
    """Validate ``raw`` into ``cls``.

    Args:
        raw: the value as written (a mapping from YAML or JSON; ``None`` means empty).
        cls: the Struct to build.
        where: the element path of ``raw``, e.g. ``$.nets.main.tasks.fetch.run.config``.
        what: what ``cls`` is, for the hint, e.g. ``"the 'http' connector's config"``.
        connector: the connector's name, carried by the error.

    Returns:
        The validated struct.

    Raises:
        ConnectorConfigError: ``raw`` does not validate; its path names the bad value and its
            hint the fix.
    """
    if raw is None:
        raw = {}
    if isinstance(raw, cls):
        return raw
    try:
        return msgspec.convert(raw, cls, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        reason, at = (match["reason"], match["at"] or "") if match else (str(exc), "")
        path = where + at
        below = _parts(at)
        inner, inner_at = _container(cls, at)
        what = f"{what}'s {inner_at[1:]}" if inner_at else what
        hint = f"{what} takes: {describe_fields(inner)}"
        if unknown := _UNKNOWN.match(reason):
            name = unknown["name"]
            path = f"{path}.{name}"
            reason = f"unknown field {name!r}"
            below = (*below, name)
            names = [f.encode_name for f in msgspec.structs.fields(inner)]
            close = difflib.get_close_matches(name, names, n=1)
            hint = (f"did you mean {close[0]!r}? " if close else "") + hint
        elif missing := _MISSING.match(reason):
            name = missing["name"]
            reason = f"missing required field {name!r}"
            field = next(f for f in msgspec.structs.fields(inner) if f.encode_name == name)
            hint = f"add {name}: <{_type_name(field.type)}>; {hint}"
        raise ConnectorConfigError(path, reason, hint, connector=connector, below=below) from None


def _parts(at: str) -> tuple[str | int, ...]:
    """msgspec's ``.a[0].b[...]`` as ``("a", 0, "b")`` (an unnamed mapping key ends the path)."""
    parts: list[str | int] = []
    for name, index, unnamed in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]", at):
        if unnamed:
            break
        parts.append(name if name else int(index))
    return tuple(parts)
