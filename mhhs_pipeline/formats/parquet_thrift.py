"""The few Parquet metadata structures our writer emits, in Thrift's compact protocol.

A Parquet file's page headers and footer are Thrift structs (``parquet.thrift`` in the
Apache Parquet format repository) serialised with the compact protocol. We write only:
``PageHeader`` (data page v1 and dictionary page) and ``FileMetaData`` with its schema,
row groups, column chunks, statistics and column orders. Field ids and enum values
below are the format's; readers (pyarrow, DuckDB, Spark) check the result in
``tests/test_parquet_writer.py``.

A struct is given as ``[(field_id, kind, value), ...]``; ``kind`` is one of the
``T_*`` constants, a list value is ``(element_kind, [items])``. Optional fields are left
out by the caller. No reading: a writer needs none.
"""

from __future__ import annotations

from collections.abc import Sequence

# Compact-protocol type ids.
T_BOOL = 1  # field header carries the value: 1 true, 2 false
T_BYTE = 3
T_I16 = 4
T_I32 = 5
T_I64 = 6
T_BINARY = 8
T_LIST = 9
T_STRUCT = 12

# Parquet enums (parquet.thrift).
BOOLEAN, INT32, INT64, DOUBLE, BYTE_ARRAY = 0, 1, 2, 5, 6
REQUIRED, OPTIONAL = 0, 1
PLAIN, RLE, DELTA_BINARY_PACKED, RLE_DICTIONARY = 0, 3, 5, 8
ZSTD = 6
DATA_PAGE, DICTIONARY_PAGE = 0, 2
# ConvertedType (the legacy annotation, still read by older readers).
UTF8, DATE, TIMESTAMP_MICROS, INT_16, INT_32, INT_64 = 0, 6, 10, 16, 17, 18

Struct = Sequence[tuple[int, int, object]]
_ONE_BYTE = [bytes((b,)) for b in range(0x80)]


def varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0x80:  # most header fields: one or two bytes, without the loop
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


class Encoded(bytes):
    """A value already in compact-protocol bytes (e.g. a footer's schema, the same in
    every file of a unit): written as it is."""


def _value(out: bytearray, kind: int, value) -> None:
    if isinstance(value, Encoded):
        out += value
    elif kind == T_BYTE:
        out.append(value & 0xFF)
    elif kind in (T_I16, T_I32, T_I64):
        out += varint(zigzag(int(value)) & 0xFFFFFFFFFFFFFFFF)
    elif kind == T_BINARY:
        data = value.encode() if isinstance(value, str) else bytes(value)
        out += varint(len(data))
        out += data
    elif kind == T_STRUCT:
        _struct(out, value)
    elif kind == T_LIST:
        elem, items = value
        out.append((len(items) << 4) | elem if len(items) < 15 else 0xF0 | elem)
        if len(items) >= 15:
            out += varint(len(items))
        for item in items:
            _value(out, elem, item)
    else:
        raise ValueError(f"unsupported thrift kind {kind}")


def _struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for fid, kind, value in sorted(fields, key=lambda f: f[0]):
        wire = (1 if value else 2) if kind == T_BOOL else kind
        delta = fid - last
        if 0 < delta <= 15:
            out.append((delta << 4) | wire)
        else:
            out.append(wire)
            out += varint(zigzag(fid))
        if kind != T_BOOL:
            _value(out, kind, value)
        last = fid
    out.append(0)  # STOP


def encode_value(kind: int, value) -> Encoded:
    """``value`` of ``kind`` as :class:`Encoded` bytes, to be reused in many structs."""
    out = bytearray()
    _value(out, kind, value)
    return Encoded(out)


def encode_struct(fields: Struct) -> bytes:
    out = bytearray()
    _struct(out, fields)
    return bytes(out)


def _i32(value: int) -> bytes:
    return varint(zigzag(value) & 0xFFFFFFFF)


# Page headers are written for every column chunk of every copy: spelled out byte by byte
# (the same bytes as encode_struct gives: tests/test_parquet_writer.py checks) rather than through the generic encoder.
_I32_FIELD = (1 << 4) | T_I32  # field id +1, i32
_STRUCT_PLUS_2 = (2 << 4) | T_STRUCT
_STRUCT_PLUS_4 = (4 << 4) | T_STRUCT


def data_page_header(
    *, uncompressed: int, compressed: int, num_values: int, encoding: int
) -> bytes:
    return b"".join(
        (
            bytes((_I32_FIELD,)), _i32(DATA_PAGE), bytes((_I32_FIELD,)), _i32(uncompressed), bytes((_I32_FIELD,)), _i32(compressed),
            bytes((_STRUCT_PLUS_2, _I32_FIELD)), _i32(num_values), bytes((_I32_FIELD,)), _i32(encoding),
            bytes((_I32_FIELD,)), _i32(RLE), bytes((_I32_FIELD,)), _i32(RLE), b"\0\0",
        )
    )  # fmt: skip


def dictionary_page_header(*, uncompressed: int, compressed: int, num_values: int) -> bytes:
    return b"".join(
        (
            bytes((_I32_FIELD,)), _i32(DICTIONARY_PAGE), bytes((_I32_FIELD,)), _i32(uncompressed), bytes((_I32_FIELD,)), _i32(compressed),
            bytes((_STRUCT_PLUS_4, _I32_FIELD)), _i32(num_values), bytes((_I32_FIELD,)), _i32(PLAIN), b"\0\0",
        )
    )  # fmt: skip


def column_chunk_prefix(ptype: int, encodings: list[int], name: str) -> bytes:
    """ColumnMetaData fields 1-4 (type, encodings, path, codec): fixed per column."""
    out = bytearray(bytes((_I32_FIELD,)) + _i32(ptype))
    out.append((1 << 4) | T_LIST)
    out.append((len(encodings) << 4) | T_I32)
    for e in encodings:
        out += _i32(e)
    path = name.encode()
    out.append((1 << 4) | T_LIST)
    out.append((1 << 4) | T_BINARY)
    out += varint(len(path)) + path
    out += bytes((_I32_FIELD,)) + _i32(ZSTD)
    return bytes(out)


def _i64(value: int) -> bytes:
    return varint(zigzag(value) & 0xFFFFFFFFFFFFFFFF)


def column_chunk(
    prefix: bytes,
    *,
    file_offset: int,
    num_values: int,
    uncompressed: int,
    compressed: int,
    data_page_offset: int,
    dictionary_page_offset: int | None,
    statistics: tuple[int, bytes, bytes] | None,
) -> Encoded:
    """A ColumnChunk (with its ColumnMetaData) spelled out byte by byte: a unit writes
    hundreds; the same bytes as :func:`encode_struct` of the struct (a test checks).
    ``statistics``: (null count, min, max) as PLAIN bytes."""
    i64 = (1 << 4) | T_I64
    parts = [
        bytes(((2 << 4) | T_I64,)), _i64(file_offset), bytes(((1 << 4) | T_STRUCT,)), prefix,
        bytes((i64,)), _i64(num_values), bytes((i64,)), _i64(uncompressed), bytes((i64,)), _i64(compressed),
        bytes(((2 << 4) | T_I64,)), _i64(data_page_offset),
    ]  # fmt: skip
    last = 9
    if dictionary_page_offset is not None:
        parts += [bytes(((2 << 4) | T_I64,)), _i64(dictionary_page_offset)]
        last = 11
    if statistics is not None:
        nulls, lo, hi = statistics
        parts += [
            bytes((((12 - last) << 4) | T_STRUCT, (3 << 4) | T_I64)), _i64(nulls),
            bytes(((2 << 4) | T_BINARY,)), varint(len(hi)), hi, bytes(((1 << 4) | T_BINARY,)), varint(len(lo)), lo, b"\0",
        ]  # fmt: skip
    parts.append(b"\0\0")
    return Encoded(b"".join(parts))
