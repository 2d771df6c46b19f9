"""DCC profile-data responses bundled: one ZIP per data service per work unit.

A DCC response covers one MPAN x service x request period, so per-MPAN files would make a
market run billions of tiny objects (a 1,611-MPAN year: 37,034 of its 52,479 files). The
bundle keeps every response exactly as :mod:`mhhs_pipeline.formats.dcc_xml` writes it -- one
member per response, named as the loose file would be -- in one ZIP a participant downloads
and lists like any archive (``unzip -l``, Python's ``zipfile``).

Members are STORED, not deflated: the encoder renders ~9 M values/s and deflate would run at
a tenth of that; a participant who wants it smaller compresses the archive in transit. The
archive is deterministic: fixed timestamps (the request time), permissions and creator, and
members in the encoder's order (MPAN, service, period), so the same unit gives the same bytes.
It is written as a list of byte chunks, the members' bodies as the encoder's views (no copy).
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable

__all__ = ["DccBundle", "bundle_dcc_responses"]


class _Chunks:
    """An append-only, unseekable sink for ``zipfile``: keeps each piece as given."""

    def __init__(self) -> None:
        self.pieces: list[bytes | memoryview] = []
        self.size = 0

    def write(self, piece) -> int:
        self.pieces.append(piece)
        n = piece.nbytes if isinstance(piece, memoryview) else len(piece)
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def seekable(self) -> bool:
        return False


class DccBundle:
    """The bundle's byte chunks, its member count and the half-hour values it carries."""

    def __init__(self, chunks: list[bytes | memoryview], members: int, values: int):
        self.chunks, self.members, self.values = chunks, members, values


def bundle_dcc_responses(documents: Iterable[tuple[str, tuple, int]], *, request_timestamp_utc: dt.datetime) -> DccBundle:
    """``documents``: ``(file_name, (header, body, footer), n_values)`` as
    :func:`~mhhs_pipeline.formats.dcc_xml.iter_dcc_profile_chunks` yields them."""
    stamp = request_timestamp_utc.astimezone(dt.UTC)
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    sink = _Chunks()
    members = values = 0
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as zf:
        for name, pieces, n_values in documents:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.create_system = 3  # Unix, whatever the machine
            info.external_attr = 0o100644 << 16
            info.file_size = sum(len(p) if not isinstance(p, memoryview) else p.nbytes for p in pieces)
            with zf.open(info, mode="w") as member:
                for piece in pieces:
                    member.write(piece)
            members += 1
            values += n_values
    return DccBundle(sink.pieces, members, values)
