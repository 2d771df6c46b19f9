"""Direct-I/O landing (io.direct_write): the file holds exactly the chunks' bytes, the
returned sha256 and length are those of the bytes, write-behind files are complete after
drain(), errors surface, and a filesystem refusing O_DIRECT falls back to a plain write."""

from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mhhs_pipeline.io import direct_write
from mhhs_pipeline.io.store import RunStore

SMALL_STAGE = 2 * direct_write.BLOCK  # many ring turns with little data


def _chunks(lengths: list[int], seed: int) -> list[bytes | memoryview]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, sum(lengths), dtype=np.uint8).tobytes()
    out, at = [], 0
    for i, n in enumerate(lengths):
        piece = data[at : at + n]
        out.append(memoryview(piece) if i % 2 else piece)  # both kinds the store passes
        at += n
    return out


@pytest.fixture
def direct_dir(tmp_path):
    """A folder on a filesystem that accepts O_DIRECT (the machine's disk)."""
    probe = tmp_path / "probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o644)
    os.close(fd)
    return tmp_path


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lengths=st.lists(st.integers(0, 3 * SMALL_STAGE + 5), min_size=1, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    wait=st.booleans(),
)
def test_landed_file_is_exactly_the_chunks(direct_dir, lengths, seed, wait):
    chunks = _chunks(lengths, seed)
    expected = b"".join(bytes(c) for c in chunks)
    path = str(direct_dir / f"f-{seed}-{len(lengths)}.bin")
    # The first file on a filesystem is always waited for; later ones may land behind.
    result = direct_write.land(path, chunks, wait=wait, stage_bytes=SMALL_STAGE)
    direct_write.drain()
    assert result == (len(expected), hashlib.sha256(expected).hexdigest())
    with open(path, "rb") as f:
        assert f.read() == expected


def test_many_files_written_behind_are_complete_after_drain(direct_dir):
    rng = np.random.default_rng(7)
    files = {}
    for i in range(40):
        lengths = rng.integers(0, 5 * SMALL_STAGE, rng.integers(1, 6)).tolist()
        chunks = _chunks(lengths, i)
        path = str(direct_dir / f"b{i}.bin")
        assert direct_write.land(path, chunks, wait=False, stage_bytes=SMALL_STAGE) is not None
        files[path] = b"".join(bytes(c) for c in chunks)
    direct_write.drain()
    for path, data in files.items():
        with open(path, "rb") as f:
            assert f.read() == data, path


def test_a_write_error_behind_the_caller_surfaces_in_drain_naming_the_file(direct_dir, monkeypatch):
    direct_write.land(
        str(direct_dir / "first.bin"), [b"x" * 10], stage_bytes=SMALL_STAGE
    )  # proves the filesystem

    real_write_all = direct_write._write_all

    def bad_fd(fd, view, n_write, path):  # the write itself fails (EBADF) inside the real code
        return real_write_all(-1, view, n_write, path)

    monkeypatch.setattr(direct_write, "_write_all", bad_fd)
    path = str(direct_dir / "doomed.bin")
    assert direct_write.land(path, [b"y" * 100], wait=False, stage_bytes=SMALL_STAGE) is not None
    with pytest.raises(OSError) as err:
        direct_write.drain()
    assert err.value.errno == errno.EBADF and "doomed.bin" in str(err.value)
    monkeypatch.undo()
    direct_write.drain()  # the error was reported once; the ring is usable again
    assert direct_write.land(
        str(direct_dir / "after.bin"), [b"z" * 5], stage_bytes=SMALL_STAGE
    ) == (5, hashlib.sha256(b"z" * 5).hexdigest())


def test_a_filesystem_refusing_direct_io_gets_a_plain_write(tmp_path, monkeypatch):
    real_open = os.open

    def refuse_direct(path, flags, mode=0o777, **kw):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(direct_write.os, "open", refuse_direct)
    monkeypatch.setattr(direct_write, "_refused", set())
    data = (
        np.random.default_rng(3)
        .integers(0, 256, direct_write.MIN_BYTES + 12345, dtype=np.uint8)
        .tobytes()
    )
    assert direct_write.land(str(tmp_path / "x.bin"), [data]) is None
    store = RunStore(str(tmp_path), "run", write_behind=True)
    record = store.write(
        "central/central/consumption/u.csv",
        [data[:1000], memoryview(data)[1000:]],
        role="central",
        participant_id="central",
        dataset="consumption",
        fmt="csv",
        rows=1,
    )
    store.flush()
    assert (record.bytes, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "run" / "central/central/consumption/u.csv").read_bytes() == data


def test_store_lands_large_files_directly_and_small_ones_plainly(direct_dir, monkeypatch):
    landed = []
    real_land = direct_write.land
    monkeypatch.setattr(
        direct_write,
        "land",
        lambda path, chunks, **kw: landed.append(path) or real_land(path, chunks, **kw),
    )
    store = RunStore(str(direct_dir), "run", write_behind=True)
    big = os.urandom(direct_write.MIN_BYTES + 1)
    small = os.urandom(100)
    records = [
        store.write(
            f"central/central/consumption/{name}.csv",
            data,
            role="central",
            participant_id="central",
            dataset="consumption",
            fmt="csv",
            rows=1,
        )
        for name, data in (("big", big), ("small", small))
    ]
    store.write_manifest({"files": [r.to_dict() for r in records]})  # waits for the files behind it
    assert {os.path.basename(p) for p in landed} == {"big.csv"}  # tried again once its folder was made
    for record, data in zip(records, (big, small), strict=True):
        assert (direct_dir / "run" / record.path).read_bytes() == data
        assert record.sha256 == hashlib.sha256(data).hexdigest()


def test_direct_io_can_be_switched_off_and_a_bad_switch_is_named(direct_dir, monkeypatch):
    def no_staging(*args, **kwargs):
        raise AssertionError("direct I/O used although switched off")

    monkeypatch.setattr(direct_write, "_stage_chunks", no_staging)
    monkeypatch.setenv("MHHS_DIRECT_IO", "off")
    store = RunStore(str(direct_dir), "run", write_behind=True)
    big = os.urandom(direct_write.MIN_BYTES + 1)
    record = store.write("central/central/consumption/big.csv", big, role="central", participant_id="central", dataset="consumption", fmt="csv", rows=1)
    store.flush()
    assert (direct_dir / "run" / record.path).read_bytes() == big and record.sha256 == hashlib.sha256(big).hexdigest()
    monkeypatch.setenv("MHHS_DIRECT_IO", "sometimes")
    with pytest.raises(ValueError, match="MHHS_DIRECT_IO"):
        store.write("central/central/consumption/big2.csv", big, role="central", participant_id="central", dataset="consumption", fmt="csv", rows=1)
