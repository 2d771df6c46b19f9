"""A run never leaves a manifest that lies, never shares its run id with a live run, and
never costs a previous run before it knows it can start; such failures are one clear line.

Real filesystems where it matters: small tmpfs mounts (full disk, read-only), a second
``mhhs-pipeline run`` process for the claim.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import CLI, QUICKSTART, ROOT, cli_env, run_cli

from mhhs_pipeline.io.claim import CLAIM, RunClaimedError, run_claim
from mhhs_pipeline.io.store import MANIFEST, RunStore

TINY = ["--mpans", "40", "--start", "2026-10-24", "--end", "2026-10-25", "--workers", "1", "--no-progress"]


@contextmanager
def tmpfs(path: Path, size: str, *options: str):
    """A real tmpfs of ``size`` at ``path`` (needs root, as CI has)."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()}): these checks need root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _one_line_error(res: subprocess.CompletedProcess, code: int = 2) -> str:
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    return res.stderr.strip().splitlines()[-1]


def test_a_manifest_that_does_not_fit_is_not_left_behind(tmp_path):
    with tmpfs(tmp_path / "small", "64k") as mnt:
        store = RunStore(str(mnt), "r")
        os.makedirs(mnt / "r")
        (mnt / "r" / "data.bin").write_bytes(b"x" * (40 << 10))  # the run's data: most of the disk
        manifest = {"run_id": "r", "files": [{"path": f"p{i:06d}", "sha256": "0" * 64} for i in range(600)]}
        assert len(json.dumps(manifest, indent=1)) > 30 << 10
        with pytest.raises(OSError):
            store.write_manifest(manifest)
        assert sorted(os.listdir(mnt / "r")) == ["data.bin"]  # no manifest, whole or truncated, no temporary


def test_a_full_disk_fails_the_run_in_one_line_without_a_manifest_or_retries(tmp_path):
    with tmpfs(tmp_path / "full", "1m") as mnt:
        t0 = time.monotonic()
        res = run_cli(["run", str(QUICKSTART), "--out", str(mnt), "--run-id", "full", *TINY], tmp_path)
        line = _one_line_error(res)
        assert "No space left on device" in line and "no manifest written" in line
        assert not (mnt / "full" / MANIFEST).exists() and not (mnt / "full" / CLAIM).exists()
        assert time.monotonic() - t0 < 120


def test_unwritable_outputs_fail_before_any_work_in_one_line(tmp_path):
    regular = tmp_path / "a-file"
    regular.write_text("not a folder")
    line = _one_line_error(run_cli(["run", str(QUICKSTART), "--out", str(regular), "--run-id", "r", *TINY], tmp_path))
    assert line.startswith(f"mhhs-pipeline: cannot write the run to {regular}")
    with tmpfs(tmp_path / "ro", "1m", "ro") as mnt:
        line = _one_line_error(run_cli(["run", str(QUICKSTART), "--out", str(mnt), "--run-id", "r", *TINY], tmp_path))
        assert "Read-only file system" in line


def test_a_bad_cluster_never_costs_the_previous_run(tmp_path):
    out = tmp_path / "land"
    res = run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "keep", *TINY], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    before = (out / "keep" / MANIFEST).read_bytes()
    files = sorted(p.relative_to(out) for p in out.rglob("*"))
    base = ["run", str(QUICKSTART), "--out", str(out), "--run-id", "keep", "--mpans", "40", "--start", "2026-10-24", "--end", "2026-10-25", "--no-progress"]
    for address, says in (("tcp://127.0.0.1:1", "cannot reach the Dask scheduler at tcp://127.0.0.1:1"), ("not a url", "is not a scheduler address")):
        line = _one_line_error(run_cli([*base, "--dask-address", address], tmp_path))
        assert says in line
    assert (out / "keep" / MANIFEST).read_bytes() == before
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == files


def test_a_second_run_with_the_same_id_refuses_while_the_first_writes(tmp_path):
    out = tmp_path / "land"
    env = cli_env(tmp_path)
    first = subprocess.Popen(
        [*CLI, "run", str(QUICKSTART), "--out", str(out), "--run-id", "same", "--mpans", "600", "--workers", "1", "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "same" / CLAIM).exists():  # the first run has claimed the id
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        line = _one_line_error(run_cli(["run", str(QUICKSTART), "--out", str(out), "--run-id", "same", *TINY], tmp_path))
        assert "is being written by another run" in line and f"pid {first.pid}" in line
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stdout + stderr
    assert not (out / "same" / CLAIM).exists()
    valid = run_cli(["validate", str(out / "same")], tmp_path)
    assert valid.returncode == 0, valid.stdout


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path):
    proc = subprocess.Popen(["true"])  # a pid that has exited
    proc.wait()
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / CLAIM).write_text(json.dumps({"host": os.uname().nodename, "pid": proc.pid, "heartbeat_utc": "2099-01-01T00:00:00+00:00"}))
    with run_claim(str(tmp_path), "r") as claim:
        assert claim.holder()["pid"] == os.getpid()
        with pytest.raises(RunClaimedError):
            run_claim(str(tmp_path), "r").acquire()  # this process is alive: not stale
    assert not (tmp_path / "r" / CLAIM).exists()


def test_a_scenario_path_that_is_a_folder_is_one_line(tmp_path):
    line = _one_line_error(run_cli(["run", str(ROOT / "configs"), "--out", str(tmp_path / "o"), *TINY], tmp_path))
    assert line == f"mhhs-pipeline: {ROOT / 'configs'} is a directory; give the scenario's YAML file"
    assert not (tmp_path / "o").exists()
