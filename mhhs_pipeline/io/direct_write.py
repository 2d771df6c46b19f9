"""Landing large local files with direct I/O (``O_DIRECT``): the bytes go from a reused
staging buffer to the device instead of through the page cache.

Why: a run writes far more than the machine's memory, and nothing reads it back on the
machine that wrote it. Through the page cache every byte is copied into a page the kernel
must first find -- evicting cache that other work uses -- and on virtual machines that hand
free memory back to the host (free page reporting, DAMON reclaim: the 2-core CI machine
does both) each of those pages is faulted in afresh. Measured there: ~3 kernel CPU-seconds
per GB written through the page cache while it grows, ~0.4 once pages are recycled, and
~0.15 with direct I/O, the copy into the staging buffer included.

How: each calling thread owns a ring of page-aligned staging buffers, kept for its lifetime
so they stay resident, and a writer thread. The caller copies its chunks into one buffer and
hashes it (sha256, for the manifest) while the writer thread writes the others, so the
device's latency overlaps the caller's work. Direct I/O needs block-aligned lengths: the
last block is zero-padded and the file truncated to its true length (by the writer thread,
which also closes the file). With ``wait=False`` :func:`land` returns once the bytes are
staged and hashed, and the file is finished behind the caller: :func:`drain` waits for
every such file and raises the first error -- call it before reporting the files as landed.

Where a filesystem refuses ``O_DIRECT`` (some FUSE and network mounts) :func:`land`
returns ``None`` having written nothing that matters, and the caller writes the file the
ordinary way; that filesystem is not tried again in this process. A filesystem that
accepts ``O_DIRECT`` but serves it slowly (some network mounts) can be given ordinary
writes with ``MHHS_DIRECT_IO=off`` in the environment of the processes that write
(the local cluster's workers inherit it).
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

# Alignment of offsets and lengths: devices have 512- or 4096-byte logical blocks.
BLOCK = 4096
STAGE_BYTES = 8 << 20
# Buffers in the ring: while the device writes up to N - 1 of them, the caller fills the next.
STAGE_BUFFERS = 4
# Below this a file is one buffered write; the staging copy and a device round trip
# would cost more than the page cache's share.
MIN_BYTES = 1 << 20

_O_DIRECT = getattr(os, "O_DIRECT", 0)
ENV = "MHHS_DIRECT_IO"
_SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}
_refused: set[int] = set()  # st_dev of filesystems that refused O_DIRECT in this process
_proven: set[int] = set()  # st_dev of filesystems where a direct write has succeeded
_state = threading.local()


class _Stage:
    """One thread's staging ring, writer thread and files being finished behind it."""

    def __init__(self, stage_bytes: int):
        self.buffers = [
            mmap.mmap(-1, stage_bytes) for _ in range(STAGE_BUFFERS)
        ]  # page-aligned, resident
        self.views = [memoryview(b) for b in self.buffers]
        self.pending: list[Future | None] = [None] * STAGE_BUFFERS  # the write using each buffer
        self.next = 0  # the ring's next buffer
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="mhhs-direct-write")
        self.files: list[tuple[str, Future]] = []  # (path, its finishing job) not yet drained

    def take(self, i: int) -> memoryview:
        """Buffer ``i``, once the writer is done with it (its write's error raised here)."""
        job, self.pending[i] = self.pending[i], None
        if job is not None:
            job.result()
        return self.views[i]


def _stages() -> dict[int, _Stage]:
    """This thread's stages by buffer size (a forked child makes its own)."""
    if getattr(_state, "pid", None) != os.getpid():
        _state.pid, _state.stages = os.getpid(), {}
    return _state.stages


def _stage(stage_bytes: int) -> _Stage:
    stages = _stages()
    if stage_bytes not in stages:
        stages[stage_bytes] = _Stage(stage_bytes)
    return stages[stage_bytes]


def enabled() -> bool:
    """Whether direct I/O is to be tried: ``MHHS_DIRECT_IO`` on (the default) or off."""
    value = os.environ.get(ENV, "on").strip().lower()
    if value not in _SWITCH:
        raise ValueError(f"{ENV}={os.environ[ENV]!r}: use on or off")
    return _SWITCH[value]


def land(
    path: str,
    chunks: Sequence[bytes | memoryview],
    *,
    wait: bool = True,
    stage_bytes: int = STAGE_BYTES,
) -> tuple[int, str] | None:
    """Write ``chunks`` in order as the file ``path`` with direct I/O.

    Returns (bytes, sha256 hex digest of them), or ``None`` where this filesystem refuses
    direct I/O: the caller then writes the file itself (``path`` may exist, empty or partly
    written, and is to be overwritten). ``wait=False``: return once the bytes are staged;
    :func:`drain` must be called before the file is reported as landed. The first file on
    each filesystem is always waited for, so a refusal is known before going on.
    """
    if stage_bytes % BLOCK or stage_bytes <= 0:
        raise ValueError(f"stage_bytes must be a positive multiple of {BLOCK}")
    if not _O_DIRECT or not enabled():
        return None
    folder = os.path.dirname(path) or "."
    if _refused and os.stat(folder).st_dev in _refused:
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | _O_DIRECT, 0o666)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            _refused.add(os.stat(folder).st_dev)
            return None
        raise
    device = os.fstat(fd).st_dev
    stage = _stage(stage_bytes)
    size = 0
    digest = hashlib.sha256()
    try:
        size = _stage_chunks(fd, path, chunks, stage, digest)
    finally:
        # The writer thread closes the file after its last write (and on any failure).
        finish = stage.writer.submit(_finish, fd, size)
    if wait or device not in _proven:
        errors = []
        for step in (lambda: _wait_ring(stage), finish.result):  # both, so the file is closed
            try:
                step()
            except OSError as exc:
                errors.append(exc)
        if errors:
            if errors[0].errno == errno.EINVAL and device not in _proven:
                _refused.add(device)  # e.g. a device whose blocks are larger than BLOCK
                return None
            raise errors[0]
        _proven.add(device)
    else:
        stage.files.append((path, finish))
    return size, digest.hexdigest()


def drain() -> None:
    """Wait until every file this thread landed with ``wait=False`` is written and closed;
    raise the first error (naming its file)."""
    errors: list[OSError] = []
    for st in _stages().values():
        files, st.files = st.files, []
        try:
            _wait_ring(st)
        except OSError as exc:
            errors.append(exc)
        for path, job in files:
            try:
                job.result()
            except OSError as exc:
                errors.append(OSError(exc.errno, f"finishing {path}: {exc.strerror or exc}"))
    if errors:
        raise errors[0]


def _wait_ring(stage: _Stage) -> None:
    first: BaseException | None = None
    for i in range(len(stage.pending)):
        try:
            stage.take(i)
        except OSError as exc:
            first = first or exc
    if first is not None:
        raise first


def _stage_chunks(
    fd: int, path: str, chunks: Sequence[bytes | memoryview], stage: _Stage, digest
) -> int:
    """Copy the chunks through the ring, hash each full buffer and queue its write;
    the last buffer is zero-padded to a block. Returns the file's true length."""
    ring = len(stage.views)
    cap = len(stage.views[0])
    i = stage.next
    buf = stage.take(i)
    fill = size = 0
    for chunk in chunks:
        src = memoryview(chunk).cast("B")
        off, n = 0, len(src)
        while off < n:
            k = min(n - off, cap - fill)
            buf[fill : fill + k] = src[off : off + k]
            fill += k
            off += k
            if fill == cap:
                digest.update(buf)
                stage.pending[i] = stage.writer.submit(_write_all, fd, buf, cap, path)
                size += cap
                i = (i + 1) % ring
                buf, fill = stage.take(i), 0
    if fill:
        digest.update(buf[:fill])
        padded = fill + (-fill % BLOCK)
        buf[fill:padded] = bytes(padded - fill)
        stage.pending[i] = stage.writer.submit(_write_all, fd, buf, padded, path)
        size += fill
        i = (i + 1) % ring
    stage.next = i
    return size


def _write_all(fd: int, view: memoryview, n_write: int, path: str) -> None:
    """Write the buffer's first ``n_write`` bytes (a multiple of BLOCK); on the writer
    thread, in submission order (os.write releases the GIL)."""
    done = 0
    try:
        while done < n_write:
            wrote = os.write(fd, view[done:n_write])
            if wrote % BLOCK and done + wrote < n_write:  # cannot go on aligned
                raise OSError(errno.EIO, "short direct write not on a block boundary")
            done += wrote
    except OSError as exc:
        raise OSError(exc.errno, f"writing {path}: {exc.strerror or exc}") from exc


def _finish(fd: int, size: int) -> None:
    """Cut the last block's zero padding and close the file (after its writes: same thread)."""
    try:
        if size % BLOCK:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)
