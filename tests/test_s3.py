"""Object storage on a real S3-protocol server (moto_server on loopback): run, validate,
download one participant's slice through s3fs and verify it against the manifest."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import QUICKSTART, cli_env, free_port, run_cli

pytestmark = pytest.mark.slow
BUCKET = "mhhs-test-landing"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = cli_env(tmp_path_factory.mktemp("s3home"))
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="testing-key",
        AWS_SECRET_ACCESS_KEY="testing-secret",
        AWS_DEFAULT_REGION="eu-west-2",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    import os

    old = {k: os.environ.get(k) for k in env if k.startswith("AWS_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET, region_name="eu-west-2")
    try:
        yield env, fs
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=20)


def test_run_into_s3_validate_and_download_a_slice(s3_env, tmp_path):
    env, fs = s3_env
    url = f"s3://{BUCKET}/runs"
    args = ["run", str(QUICKSTART), "--out", url, "--run-id", "s3run", "--mpans", "150", "--workers", "2", "--no-progress"]
    res = run_cli(args, tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"manifest: {url}/s3run/manifest.json" in res.stdout
    res = run_cli(["validate", f"{url}/s3run"], tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr

    fs.invalidate_cache()
    manifest = json.loads(fs.cat_file(f"{BUCKET}/runs/s3run/manifest.json"))
    supplier = next(f["participant_id"] for f in manifest["files"] if f["participant_role"] == "supplier")
    mine = [f for f in manifest["files"] if f["participant_role"] == "supplier" and f["participant_id"] == supplier]
    listed = sorted(p.removeprefix(f"{BUCKET}/runs/s3run/") for p in fs.find(f"{BUCKET}/runs/s3run/supplier/{supplier}"))
    assert listed == sorted(f["path"] for f in mine)
    local = tmp_path / "download"
    fs.get(f"{BUCKET}/runs/s3run/supplier/{supplier}/", str(local) + "/", recursive=True)
    for f in mine:
        data = (local / f["path"].removeprefix(f"supplier/{supplier}/")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
    regs = pa.concat_tables([pq.read_table(p) for p in (local / "registrations").glob("*.parquet")]).to_pandas()
    assert set(regs.supplier_id) == {supplier}

    # Re-running the run id replaces it cleanly: no file of the first run survives.
    fs.pipe_file(f"{BUCKET}/runs/s3run/supplier/{supplier}/stale.csv", b"old\n")
    res = run_cli(args[:-1] + ["--mpans", "100", "--no-progress"], tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run_cli(["validate", f"{url}/s3run"], tmp_path, env=env)
    assert res.returncode == 0, res.stdout


def test_credentials_never_land_in_the_run(s3_env, tmp_path):
    env, fs = s3_env
    fs.invalidate_cache()
    for path in fs.find(f"{BUCKET}/runs"):
        if path.endswith((".json", ".csv", ".txt")):
            text = fs.cat_file(path)
            assert b"testing-secret" not in text and b"testing-key" not in text


def test_a_run_claim_is_exclusive_on_s3_and_a_stale_one_is_taken_over(s3_env):
    _, fs = s3_env
    from mhhs_pipeline.io.claim import RunClaimedError, run_claim

    out = f"s3://{BUCKET}/claims"
    first = run_claim(out, "r1").acquire()
    try:
        with pytest.raises(RunClaimedError, match="being written by another run"):
            run_claim(out, "r1").acquire()  # the conditional PUT finds it
    finally:
        first.release()
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/claims/r1/_claim.json")
    # A claim whose heartbeat stopped long ago (its writer died elsewhere) is taken over.
    fs.pipe_file(f"{BUCKET}/claims/r2/_claim.json", json.dumps({"host": "elsewhere", "pid": 1, "heartbeat_utc": "2026-01-01T00:00:00+00:00"}).encode())
    with run_claim(out, "r2") as claim:
        assert claim.holder()["token"] == claim.token
