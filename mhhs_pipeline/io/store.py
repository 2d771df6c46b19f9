"""A run directory on any fsspec filesystem: write files with checksums, manifest last.

Files are encoded in memory and written whole, so the sha256 and byte count come from
the exact bytes landed; large local files bypass the page cache (:mod:`.direct_write`).
The manifest is written only after every data file; re-running a run id first removes
the old manifest, then the old files, so a reader never sees a manifest that lists files
of two runs.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import fsspec

from mhhs_pipeline.io import direct_write
from mhhs_pipeline.io.claim import CLAIM
from mhhs_pipeline.io.paths import check_run_id, join

PARTICIPANT_MANIFEST_DATASET = "manifest"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the run directory
    participant_role: str
    participant_id: str
    dataset: str
    format: str
    rows: int
    bytes: int
    sha256: str
    members: int | None = None  # archives only (dcc_xml_zip): the responses inside

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["members"] is None:
            del d["members"]
        return d


def _fs(url: str):
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


class RunStore:
    """The run directory ``<out>/<run_id>`` on the filesystem of ``out``."""

    def __init__(self, out_url: str, run_id: str, *, write_behind: bool = False):
        """``write_behind``: large local files may still be landing when :meth:`write`
        returns; :meth:`flush` must then be called before their records are reported."""
        self.write_behind = write_behind
        self.out_url = out_url.rstrip("/")
        self.run_id = check_run_id(run_id)
        self.fs, root = _fs(self.out_url)
        self.root = posixpath.join(root, run_id) if root else run_id
        self.url = f"{self.out_url}/{run_id}"
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        # Local folders need parent directories; object stores have none.
        self._local = "file" in protocols or "local" in protocols

    def _abs(self, rel: str) -> str:
        return posixpath.join(self.root, join(rel))

    def write(
        self, rel: str, data: bytes | Sequence[bytes | memoryview], *, role: str, participant_id: str, dataset: str, fmt: str, rows: int, members: int | None = None
    ) -> FileRecord:
        """Land one file. ``data``: its bytes, or its byte chunks in order (e.g. a header
        and byte ranges of a rendering): hashed and written one by one, never joined on a
        local filesystem; object stores get one joined body (one PUT)."""
        path = self._abs(rel)
        chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        if not self._local:
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            body = b"".join(chunks)
            self.fs.pipe_file(path, body)
            return FileRecord(rel, role, participant_id, dataset, fmt, rows, len(body), digest.hexdigest(), members)
        try:
            landed = self._land_local(path, chunks)
        except FileNotFoundError:  # the folder's first file: make it (cheaper than checking every time)
            os.makedirs(posixpath.dirname(path), exist_ok=True)
            landed = self._land_local(path, chunks)
        return FileRecord(rel, role, participant_id, dataset, fmt, rows, *landed, members)

    def _land_local(self, path: str, chunks: Sequence[bytes | memoryview]) -> tuple[int, str]:
        """(bytes, sha256) of one local file written from its chunks."""
        if sum(len(c) for c in chunks) >= direct_write.MIN_BYTES:
            landed = direct_write.land(path, chunks, wait=not self.write_behind)  # no page cache
            if landed is not None:
                return landed
        digest = hashlib.sha256()
        size = 0
        with open(path, "wb") as f:  # the local path fsspec resolved; a plain buffered write
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                f.write(chunk)
        return size, digest.hexdigest()

    def flush(self) -> None:
        """Wait until every file written behind (``write_behind``) has landed; raise the
        first error."""
        direct_write.drain()

    def read(self, rel: str) -> bytes:
        return self.fs.cat_file(self._abs(rel))

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._abs(rel))

    def list_files(self) -> list[str]:
        """Every file under the run directory, relative to it."""
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache()  # object stores cache listings; we need the truth
        if not self.fs.exists(self.root):
            return []
        found = self.fs.find(self.root)
        prefix = self.root.rstrip("/") + "/"
        return sorted(p[len(prefix):] if p.startswith(prefix) else p for p in found)

    def reset(self) -> None:
        """Remove a previous run with this id: manifest first, then its files (all but the
        run's claim, :mod:`.claim`, which the caller holds)."""
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache()
        manifest = posixpath.join(self.root, MANIFEST)
        if self.fs.exists(manifest):
            self.fs.rm_file(manifest)
        if self.fs.exists(self.root):
            doomed = [e for e in self.fs.ls(self.root, detail=False) if posixpath.basename(e.rstrip("/")) != CLAIM]
            if doomed:
                self.fs.rm(doomed, recursive=True)
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache()

    def write_manifest(self, manifest: dict) -> str:
        """Write ``manifest.json`` whole or not at all: a reader never finds a partial one
        (its presence means the run is complete). Local folders: a temporary file, flushed
        to disk, renamed over the final name. Object stores: one PUT, which lands whole;
        its size is checked after."""
        self.flush()  # never list a file that is still landing
        # Completed in place, so the caller's totals count the participants' manifests too.
        manifest.update(self._with_participant_manifests(manifest))
        data = json.dumps(manifest, indent=1, sort_keys=False).encode()
        path = posixpath.join(self.root, MANIFEST)
        if self._local:
            os.makedirs(self.root, exist_ok=True)
            tmp = posixpath.join(self.root, f".{MANIFEST}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        else:
            self.fs.pipe_file(path, data)
            if hasattr(self.fs, "invalidate_cache"):
                self.fs.invalidate_cache(path)
            landed = self.fs.info(path)["size"]
            if landed != len(data):
                raise OSError(f"{self.url}/{MANIFEST} landed with {landed} of {len(data)} bytes")
        return f"{self.url}/{MANIFEST}"

    def _with_participant_manifests(self, manifest: dict) -> dict:
        """Write ``<role>/<participant_id>/manifest.json`` for every participant -- the run's
        fields with only that participant's files -- and return the run's manifest listing
        them too (dataset ``manifest``). A participant verifies its download with its own,
        without seeing other participants' file names. Entries of earlier participant
        manifests (a repaired run's) are replaced, so the same files give the same bytes."""
        files = [f for f in manifest["files"] if f.get("dataset") != PARTICIPANT_MANIFEST_DATASET]
        by_participant: dict[tuple[str, str], list[dict]] = {}
        for f in files:
            if "participant_role" in f:
                by_participant.setdefault((f["participant_role"], f["participant_id"]), []).append(f)
        head = {k: v for k, v in manifest.items() if k in ("run_id", "seed", "scenario", "scenario_sha256", "window", "population_window", "generator")}
        added = []
        for (role, pid), own in sorted(by_participant.items()):
            body = json.dumps({**head, "participant": {"role": role, "id": pid}, "files": own}, indent=1).encode()
            added.append(self.write(f"{role}/{pid}/{MANIFEST}", body, role=role, participant_id=pid, dataset=PARTICIPANT_MANIFEST_DATASET, fmt="json", rows=0).to_dict())
        self.flush()
        out = {**manifest, "files": sorted(files + added, key=lambda f: f["path"])}
        if isinstance(out.get("totals"), dict) and "files" in out["totals"]:
            out["totals"] = {**out["totals"], "files": len(out["files"]), "bytes": sum(f["bytes"] for f in out["files"])}
        return out

    def has_manifest(self) -> bool:
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache()
        return self.fs.exists(posixpath.join(self.root, MANIFEST))

    def remove_manifest(self) -> None:
        """Mark the run incomplete (its files stay): before some of its files are rewritten."""
        path = posixpath.join(self.root, MANIFEST)
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def read_manifest(self) -> dict:
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache()
        return json.loads(self.fs.cat_file(posixpath.join(self.root, MANIFEST)))


def store_for_run_url(run_url: str) -> RunStore:
    """The RunStore of a run directory URL ``<out>/<run_id>``."""
    run_url = run_url.rstrip("/")
    out, _, run_id = run_url.rpartition("/")
    if not run_id:
        raise ValueError(f"{run_url!r} is not a run directory (<out>/<run_id>)")
    return RunStore(out or ".", run_id)


# errno values that no retry mends: the output is not writable as given.
_PERMANENT_ERRNO = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}


def is_permanent(exc: BaseException) -> bool:
    """An I/O error that a retry cannot mend (full disk, read-only filesystem, no
    permission, a file where a folder should be; object-store access denied or no such
    bucket). Other errors (timeouts, resets, 5xx) may pass on a retry."""
    if isinstance(exc, PermissionError | NotADirectoryError | IsADirectoryError | FileExistsError):
        return True
    if isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNO:
        return True
    text = repr(exc)
    return any(code in text for code in ("AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch"))
