"""The store's codec: events and specs to bytes and back, with msgspec's MessagePack.

Every event class in :mod:`yawlflow._events` is a tagged ``msgspec.Struct`` (``tag_field="type"``),
so the union :data:`~yawlflow._events.Event` decodes directly. The durable stores keep the tag in a
column of its own (``kind``) as well, so that a reader can filter or count events without decoding
bodies, and :func:`decode_event` checks that the column and the body agree.

MessagePack rather than JSON: it keeps ``bytes`` and ``datetime`` values in case data as they are
(JSON turns both into strings), and it is smaller and faster. ``sqlite3 cases.db`` shows a body as
a blob; ``yawlflow cases show`` decodes it.
"""

from __future__ import annotations

import hashlib
import typing
from typing import Any, Final

import msgspec

from ._events import Event
from ._spec._model import Spec

__all__ = (
    "KINDS",
    "CodecError",
    "decode_event",
    "decode_spec",
    "encode_event",
    "encode_spec",
    "kind_of",
)


class CodecError(Exception):
    """A value cannot be encoded, or bytes cannot be decoded (the message says which and why)."""


KINDS: Final[dict[str, type[Any]]] = {
    cls.__struct_config__.tag: cls for cls in typing.get_args(Event)
}
"""Every event kind (the struct's tag, e.g. ``item_completed``) and its class."""

_ENCODER: Final = msgspec.msgpack.Encoder()
_EVENT_DECODER: Final = msgspec.msgpack.Decoder(Event)


_SPEC_DECODER: Final = msgspec.msgpack.Decoder(Spec)
_DATA_DECODER: Final = msgspec.msgpack.Decoder()

SPEC_FORMAT: Final = "spec"
"""A spec stored as a :class:`~yawlflow._spec.Spec` struct."""
DATA_FORMAT: Final = "data"
"""A spec stored as plain data (anything else a caller passed as the spec: tests, tools)."""


def kind_of(event: Event) -> str:
    """The event's kind: the tag of its struct (``case_started``, ``item_completed``, ...)."""
    tag = type(event).__struct_config__.tag
    if not isinstance(tag, str):
        raise CodecError(f"{type(event).__name__} is not an event struct (it has no tag)")
    return tag


def encode_event(event: Event, *, check: bool = True) -> tuple[str, bytes]:
    """Encode one event.

    Args:
        event: the event.
        check: decode the bytes again, so that an event that would not decode (case data with
            keys that are not strings, say) is refused now, at append time, rather than found
            when the case is resumed.

    Returns:
        ``(kind, body)``.

    Raises:
        CodecError: the event holds a value MessagePack cannot encode, or that would not decode
            back into the event's type.
    """
    kind = kind_of(event)
    try:
        body = _ENCODER.encode(event)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(
            f"a {kind} event cannot be stored: {exc} (case data, outputs and signal data must hold "
            "only dicts with str keys, lists, str, int, float, bool, None, bytes and datetime)"
        ) from None
    if check:
        try:
            _EVENT_DECODER.decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(
                f"a {kind} event would not decode once stored: {exc} (case data, outputs and signal "
                "data must be dicts with str keys)"
            ) from None
    return kind, body


def decode_event(body: bytes, kind: str | None = None) -> Event:
    """Decode one event body; with ``kind``, also check that it is an event of that kind.

    Raises:
        CodecError: the bytes are not an event (or not one of ``kind``).
    """
    try:
        event: Event = _EVENT_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise CodecError(f"the body does not decode as an event: {exc}") from None
    if kind is not None and kind_of(event) != kind:
        raise CodecError(f"the body is a {kind_of(event)} event but the record says {kind}")
    return event


def encode_spec(spec: Any) -> tuple[str, bytes, bytes]:
    """Encode the spec a case runs.

    Returns:
        ``(format, body, content hash)``: ``format`` is :data:`SPEC_FORMAT` for a
        :class:`~yawlflow._spec.Spec`, :data:`DATA_FORMAT` for plain data; the hash (SHA-256 of
        the body) names the spec version, so a store keeps each version once.

    Raises:
        CodecError: the spec cannot be encoded.
    """
    fmt = SPEC_FORMAT if isinstance(spec, Spec) else DATA_FORMAT
    try:
        body = _ENCODER.encode(spec)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"the spec cannot be stored: {exc} (pass a yawlflow.Spec, as yawlflow.load returns)") from None
    return fmt, body, hashlib.sha256(body).digest()


def decode_spec(fmt: str, body: bytes) -> Any:
    """Decode a spec stored by :func:`encode_spec`.

    Raises:
        CodecError: unknown format, or the bytes do not decode.
    """
    try:
        if fmt == SPEC_FORMAT:
            return _SPEC_DECODER.decode(body)
        if fmt == DATA_FORMAT:
            return _DATA_DECODER.decode(body)
    except msgspec.DecodeError as exc:
        raise CodecError(f"the stored spec does not decode: {exc}") from None
    raise CodecError(f"unknown spec format {fmt!r} (a newer yawlflow wrote it?)")
