"""Optional compression of text outputs: zstd (level 1) or gzip at level 1.

gzip's default level 9 is several times slower for a few per cent smaller files; level 1
keeps CSV delivery fast. zstd frames are written by pyarrow's codec (standard frames
readable by `zstd -d`).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import pyarrow as pa

SUFFIX = {"none": "", "gzip": ".gz", "zstd": ".zst"}


def compress(data: bytes | Sequence[bytes | memoryview], codec: str) -> bytes | Sequence[bytes | memoryview]:
    """``data`` (bytes, or byte chunks in order) compressed; ``none`` hands it back as it is."""
    if codec == "none":
        return data
    chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    if codec == "gzip":
        return gzip.compress(b"".join(chunks), compresslevel=1, mtime=0)  # mtime=0: same bytes every run
    if codec == "zstd":
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, "zstd") as out:
            for chunk in chunks:
                out.write(chunk)
        return sink.getvalue().to_pybytes()
    raise ValueError(f"unknown compression {codec!r}; use none, gzip or zstd")


def decompress(data: bytes, path: str) -> bytes:
    """Undo :func:`compress`, choosing the codec from the file name."""
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        return pa.CompressedInputStream(pa.BufferReader(data), "zstd").read()
    return data
