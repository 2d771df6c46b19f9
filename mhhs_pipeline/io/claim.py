"""A run id claimed by one writer at a time: ``<out>/<run_id>/_claim.json``.

Two runs started at once with the same ``--out`` and run id would otherwise interleave
their files into one directory. The claim is created exclusively -- ``O_CREAT | O_EXCL``
on a local folder, a conditional PUT (``If-None-Match: *``) on S3 -- before the run
touches the directory, refreshed by a heartbeat while the run writes, and removed once
the manifest is written (or the run fails). A claim left by a run that died (SIGKILL,
lost machine) is stale once its heartbeat is older than ``stale_after_s``, or at once when
it names a process of this host that no longer exists; a new run then takes it over.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import socket
import threading
import uuid

import fsspec

CLAIM = "_claim.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class RunClaimedError(RuntimeError):
    """Another live run holds this run id."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunClaim:
    """The claim of ``<root>`` (a run directory on ``fs``); use as a context manager."""

    def __init__(self, fs, root: str, url: str, *, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S):
        self.fs = fs
        self.path = posixpath.join(root, CLAIM)
        self.url = f"{url}/{CLAIM}"
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.token = uuid.uuid4().hex
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocols or "local" in protocols
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._made: list[str] = []  # local folders the claim created, deepest first

    def _body(self, started: str | None = None) -> bytes:
        now = _now().isoformat()
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token, "started_utc": started or now, "heartbeat_utc": now}).encode()

    def _create(self) -> bool:
        """Create the claim if none exists; False if one does."""
        body = self._body()
        if self._local:
            folder = posixpath.dirname(self.path)
            missing = []
            while folder and not os.path.exists(folder):
                missing.append(folder)
                folder = posixpath.dirname(folder)
            os.makedirs(posixpath.dirname(self.path), exist_ok=True)
            self._made = missing + self._made  # deepest first
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            return True
        try:
            self.fs.pipe_file(self.path, body, mode="create")
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "PreconditionFailed" in repr(exc) or "412" in str(exc):
                return False
            raise
        return True

    def holder(self) -> dict | None:
        """The claim's content, or None when there is none (or it cannot be read as one)."""
        if hasattr(self.fs, "invalidate_cache"):
            self.fs.invalidate_cache(self.path)
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return {}  # a torn claim: a writer died between create and write

    def _stale(self, held: dict) -> bool:
        if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int) and not _pid_alive(held["pid"]):
            return True
        try:
            beat = dt.datetime.fromisoformat(held["heartbeat_utc"])
        except (KeyError, TypeError, ValueError):
            return True
        return (_now() - beat).total_seconds() > self.stale_after_s

    def acquire(self) -> RunClaim:
        if not self._create():
            held = self.holder()
            if held is not None and not self._stale(held):
                raise RunClaimedError(
                    f"run directory {posixpath.dirname(self.url)} is being written by another run "
                    f"(host {held.get('host')}, pid {held.get('pid')}, since {held.get('started_utc')}; "
                    f"claim {self.url}): wait for it to finish, or use another --run-id"
                )
            # Stale (its writer died): take it over.
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass
            if not self._create():
                raise RunClaimedError(f"run directory {posixpath.dirname(self.url)} was claimed by another run just now; use another --run-id")
        self._started = json.loads(self._body())["started_utc"]
        self._thread = threading.Thread(target=self._beat, name="run-claim-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                held = self.holder()
                if held is not None and held.get("token") == self.token:
                    self.fs.pipe_file(self.path, self._body(self._started))
            except Exception:  # a missed beat only makes the claim look older
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        held = self.holder()
        if held is not None and held.get("token") == self.token:
            self.fs.rm_file(self.path)
        # A claim given back before anything was written (a probe, or a run refused up
        # front) leaves no empty folders behind; a folder with anything in it stays.
        for folder in self._made:
            try:
                os.rmdir(folder)
            except OSError:
                break

    def __enter__(self) -> RunClaim:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def run_claim(out_url: str, run_id: str, **kwargs) -> RunClaim:
    """The claim of run directory ``<out_url>/<run_id>``."""
    from mhhs_pipeline.io.paths import check_run_id

    fs, root = fsspec.core.url_to_fs(out_url.rstrip("/"))
    root = root.rstrip("/")
    run_root = posixpath.join(root, check_run_id(run_id)) if root else run_id
    return RunClaim(fs, run_root, f"{out_url.rstrip('/')}/{run_id}", **kwargs)
