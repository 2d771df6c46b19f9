"""The Prefect UI, seen: a real ``prefect server start`` (UI on, loopback, own PREFECT_HOME),
a tiny ``mhhs-run`` against it, and ``deploy/ui_screenshot.py`` run as a user would, in
headless Chromium. The PNGs must be real, non-blank screenshots of the expected size, and
the artifact page's rendered text must hold the run summary as the run's manifest has it.

Skips when Chromium is missing (``deploy/install-chromium.sh`` installs it; ``$CHROMIUM``
points elsewhere). Every process is stopped by its process group at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICKSTART, ROOT, cli_env, free_port

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
SCRIPT = ROOT / "deploy" / "ui_screenshot.py"
WIDTH, HEIGHT = 1600, 1100


def _wait_healthy(api: str, proc: subprocess.Popen, timeout: float = 90) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, f"prefect server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError("Prefect server did not become healthy")


def _stop(proc: subprocess.Popen | None) -> None:
    """SIGINT twice, then SIGTERM, then SIGKILL, to the process group."""
    if proc is None:
        return
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _run_group(cmd: list[str], env: dict, timeout: float) -> tuple[int, str]:
    """Run a command in its own process group (Chromium included), killed whole on timeout."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        out, _ = proc.communicate()
        pytest.fail(f"{cmd[:3]} ran past {timeout} s:\n{out}")
    finally:
        _stop(proc)
    return proc.returncode, out


def _image(path: Path) -> np.ndarray:
    """Check the PNG signature and header, decode it with matplotlib's reader; returns an
    (h, w, channels) uint8 array whose shape matches the header's size."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    w, h = struct.unpack(">II", data[16:24])
    import matplotlib.image as mpimg

    img = (mpimg.imread(path) * 255).round().astype(np.uint8)
    assert img.shape[:2] == (h, w), (img.shape, w, h)
    return img


def _flow_run_ids(api: str) -> list[tuple[str, str]]:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def main():
        async with PrefectClient(api=api) as c:
            runs = await c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["mhhs-run"])))
            return [(str(r.id), r.state.type.value if r.state else "") for r in runs]

    return asyncio.run(main())


@pytest.mark.skipif(not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)), reason=f"Chromium not found at {CHROMIUM}: run deploy/install-chromium.sh as root, or set $CHROMIUM")
def test_ui_shows_flow_run_and_run_summary(tmp_path):
    t_start = time.monotonic()
    port = free_port()
    ui, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    env = cli_env(tmp_path)
    env.update(
        PREFECT_API_URL=api,
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_UI_ENABLED="true",
    )
    scenario = tmp_path / "tiny.yaml"
    text = QUICKSTART.read_text()
    assert "mpans: 2000" in text
    scenario.write_text(text.replace("mpans: 2000", "mpans: 60"))
    out, shots = tmp_path / "landing", tmp_path / "shots"

    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        healthy_s = _wait_healthy(api, server)
        t0 = time.monotonic()
        rc, log = _run_group([sys.executable, "-m", "flows.cli", "run", str(scenario), "--out", str(out), "--run-id", "ui-seen", "--workers", "1", "--no-progress"],
                             {**env, "PREFECT_LOGGING_LEVEL": "INFO"}, timeout=180)  # fmt: skip
        assert rc == 0, log
        run_s = time.monotonic() - t0
        runs = _flow_run_ids(api)
        assert len(runs) == 1 and runs[0][1] == "COMPLETED", runs
        t0 = time.monotonic()
        rc, log = _run_group([sys.executable, str(SCRIPT), ui, runs[0][0], "--out-dir", str(shots), "--timeout", "45"], env, timeout=150)
        shot_s = time.monotonic() - t0
        assert rc == 0, log
    finally:
        _stop(server)
    print(f"server healthy in {healthy_s:.1f} s; run {run_s:.1f} s; screenshots {shot_s:.1f} s; all {time.monotonic() - t_start:.1f} s")

    manifest = json.loads((out / "ui-seen" / "manifest.json").read_text())
    for name, min_h in (("flow-run", HEIGHT), ("artifacts", HEIGHT + 1)):  # 79 table rows never fit in 1100 px
        img = _image(shots / f"{name}.png")
        h, w = img.shape[:2]
        assert w == WIDTH and min_h <= h <= 8000, (name, img.shape)
        gray = img[..., :3].astype(float).mean(axis=2)
        assert gray.std() > 8, f"{name}.png looks blank (std {gray.std():.1f})"
        assert len(np.unique(img[::4, ::4, :3].reshape(-1, 3), axis=0)) > 50, f"{name}.png has too few colours"

    run_text = (shots / "flow-run.txt").read_text()
    assert "Completed" in run_text and "mhhs-run" in run_text, run_text[:500]
    page = (shots / "artifacts.txt").read_text()
    assert "run-summary" in page and "totals" in page and "central" in page, page[:500]
    assert str(manifest["totals"]["half_hour_values"]) in page, page[:500]
    assert f"{manifest['totals']['mpans']} MPANs" in page
    participants = {f["participant_id"] for f in manifest["files"]} - {"central"}
    assert participants and all(p in page for p in participants), sorted(p for p in participants if p not in page)
