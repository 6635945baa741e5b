"""Minimal protobuf wire-format reader for ICS-23 messages.

Why: verifying a proof must not depend on a protobuf runtime, and the ICS-23
messages only use varints and length-delimited fields, so a tiny reader suffices.
"""

from __future__ import annotations

from collections.abc import Iterator

from plurigrid.errors import PlurigridError


class Ics23Error(PlurigridError, ValueError):
    """Malformed ICS-23 input or a proof that fails a structural check."""


VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 varint at `pos`; return (value, next position)."""
    if pos < len(data) and data[pos] < 0x80:  # one-byte varints (most tags and lengths)
        return data[pos], pos + 1
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise Ics23Error("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
    raise Ics23Error("varint too long")


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative int as an unsigned LEB128 varint (protobuf length prefix)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one message.

    Varints are yielded as ints, length-delimited fields as bytes; fixed-width
    fields are yielded as raw bytes so callers can ignore unknown fields.
    """
    pos = 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise Ics23Error("invalid field number 0")
        if wire == VARINT:
            value, pos = read_varint(data, pos)
            yield field, wire, value
        elif wire == LENGTH_DELIMITED:
            length, pos = read_varint(data, pos)
            if pos + length > len(data):
                raise Ics23Error("truncated length-delimited field")
            yield field, wire, data[pos : pos + length]
            pos += length
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if pos + width > len(data):
                raise Ics23Error("truncated fixed-width field")
            yield field, wire, data[pos : pos + width]
            pos += width
        else:
            raise Ics23Error(f"unsupported wire type {wire}")


def expect_int(wire: int, value: int | bytes) -> int:
    """Return a varint field's value, rejecting a wire-type mismatch."""
    if wire != VARINT or not isinstance(value, int):
        raise Ics23Error("expected varint field")
    return value


def expect_bytes(wire: int, value: int | bytes) -> bytes:
    """Return a length-delimited field's payload, rejecting a wire-type mismatch."""
    if wire != LENGTH_DELIMITED or not isinstance(value, bytes):
        raise Ics23Error("expected length-delimited field")
    return value


def packed_ints(wire: int, value: int | bytes) -> list[int]:
    """Decode a repeated int field given either packed or unpacked encoding."""
    if wire == VARINT and isinstance(value, int):
        return [value]
    payload = expect_bytes(wire, value)
    out: list[int] = []
    pos = 0
    while pos < len(payload):
        item, pos = read_varint(payload, pos)
        out.append(item)
    return out
