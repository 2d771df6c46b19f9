"""Scheduled deployments on a real Prefect server: `flows.serve` registers the deployment
with its cron schedule; a triggered run completes and leaves its run-summary artifact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
from conftest import QUICKSTART, ROOT, cli_env, free_port

pytestmark = pytest.mark.slow


def _wait_healthy(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("Prefect server did not become healthy")


def test_deployment_schedule_run_and_artifact(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = cli_env(tmp_path)
    env["PREFECT_API_URL"] = api
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_SERVER_UI_ENABLED"] = "false"
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(QUICKSTART.read_text().replace("mpans: 2000", "mpans: 60"))
    config = tmp_path / "deployments.yaml"
    config.write_text(f'deployments:\n  - name: tiny-nightly\n    scenario: {scenario}\n    cron: "30 2 * * *"\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    serve = None
    try:
        _wait_healthy(api)
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.serve", "--out", str(tmp_path / "landing"), "--config", str(config), "--workers", "1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        script = textwrap.dedent(
            """
            import asyncio, sys, time
            from prefect.client.orchestration import get_client
            from prefect.deployments import run_deployment
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

            async def main():
                async with get_client() as c:
                    for _ in range(120):
                        try:
                            dep = await c.read_deployment_by_name("mhhs-run/tiny-nightly")
                            break
                        except Exception:
                            await asyncio.sleep(0.5)
                    else:
                        sys.exit("deployment never registered")
                    schedules = [s.schedule.cron for s in dep.schedules]
                    print("SCHEDULES", schedules)
                fr = await run_deployment("mhhs-run/tiny-nightly", timeout=240)
                print("STATE", fr.state.type.value)
                async with get_client() as c:
                    arts = await c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["run-summary"])), flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])))
                    print("ARTIFACTS", len(arts), arts[0].type if arts else None)
                    print("DESC", arts[0].description if arts else "")
            asyncio.run(main())
            """
        )
        res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "SCHEDULES ['30 2 * * *']" in res.stdout
        assert "STATE COMPLETED" in res.stdout
        assert "ARTIFACTS 1 table" in res.stdout
        assert "MPANs" in res.stdout
        runs = list((tmp_path / "landing").iterdir())
        assert len(runs) == 1 and (runs[0] / "manifest.json").exists()
    finally:
        for proc in (serve, server):
            if proc is None:
                continue
            for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
