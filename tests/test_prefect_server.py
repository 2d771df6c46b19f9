"""The project's deployments on a real Prefect server (loopback, own PREFECT_HOME, SQLite).

- ``prefect deploy --all --prefect-file deploy/prefect.yaml`` onto a ``process`` work pool,
  a ``prefect worker`` runs what the API triggers: the full-scenario deployment (from a
  registration extract) and the drip-feed deployment complete, with their task runs,
  artifacts, progress logs and files;
- the documented Kubernetes variant deploys one deployment onto a ``kubernetes`` pool;
- ``python -m flows.serve`` serves the same list with its schedules.
Every process is stopped by its process group at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import QUICKSTART, ROOT, cli_env, free_port

from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.spec.scenario import parse_scenario

pytestmark = pytest.mark.slow

PREFECT = [sys.executable, "-m", "prefect"]
PREFECT_FILE = ROOT / "deploy" / "prefect.yaml"


def _wait_healthy(api: str, timeout: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError("Prefect server did not become healthy")


def _stop(proc: subprocess.Popen | None) -> None:
    """SIGINT twice (a Prefect worker needs two), then SIGTERM, then SIGKILL, to the group."""
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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Prefect server on loopback; yields (env with PREFECT_API_URL, seconds to healthy)."""
    tmp = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = cli_env(tmp)
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    proc = subprocess.Popen(
        PREFECT + ["server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        started_s = _wait_healthy(env["PREFECT_API_URL"])
        yield env, started_s
    finally:
        _stop(proc)


def _prefect(args: list[str], env: dict, cwd: Path = ROOT, timeout: int = 180) -> subprocess.CompletedProcess:
    res = subprocess.run(PREFECT + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _client_script(env: dict, body: str, *args: str, timeout: int = 480) -> dict:
    """Run an async Prefect client snippet in a fresh process; it prints one JSON line."""
    script = "import asyncio, json, sys\nfrom prefect.client.orchestration import get_client\n" + textwrap.dedent(body)
    res = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


RUN_AND_INSPECT = """
from prefect.deployments import run_deployment
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

NAME, PARAMS = sys.argv[1], json.loads(sys.argv[2])

async def main():
    async with get_client() as c:
        dep = await c.read_deployment_by_name(NAME)
        fr = await run_deployment(NAME, parameters=PARAMS, timeout=420)
        flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[fr.id]))
        tasks = await c.read_task_runs(flow_run_filter=flow_filter)
        arts = await c.read_artifacts(flow_run_filter=flow_filter)
        logs = await c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])))
        print(json.dumps({
            "state": fr.state.type.value,
            "wall_s": (fr.end_time - fr.start_time).total_seconds() if fr.end_time and fr.start_time else None,
            "pool": dep.work_pool_name,
            "schedules": [s.schedule.cron for s in dep.schedules],
            "tasks": {t.name.rsplit("-", 1)[0]: t.state.type.value for t in tasks},
            "artifacts": {a.key: a.type for a in arts if a.key},
            "summary": next((a.description for a in arts if a.key == "run-summary"), ""),
            "logs": [l.message for l in logs],
        }))

asyncio.run(main())
"""


def _run_deployment(env: dict, name: str, params: dict) -> dict:
    """Trigger a deployment run through the API, wait for it, and read back its state,
    task runs, artifacts and logs."""
    return _client_script(env, RUN_AND_INSPECT, name, json.dumps(params))


def _tiny_scenarios(tmp_path: Path) -> tuple[Path, Path, int]:
    """A 3-day scenario from a small registration extract (one bad row), and the drip
    population (40 MPANs over a 3-day window)."""
    base = QUICKSTART.read_text().replace("end: 2026-11-01", "end: 2026-10-21")
    regs = synthesise_registrations(parse_scenario(base), 0, 40).to_pandas().drop(columns=["archetype", "provenance"])
    regs.loc[2, "annual_consumption_kwh"] = -1  # quarantined
    extract = tmp_path / "extract.csv"
    regs.to_csv(extract, index=False)
    full = tmp_path / "extract-scenario.yaml"
    full.write_text(base + f"inputs:\n  registrations: {extract}\n")
    drip = tmp_path / "drip.yaml"
    drip.write_text(base.replace("name: quickstart", "name: tinydrip").replace("mpans: 2000", "mpans: 40"))
    return full, drip, len(regs)


def test_deploy_worker_runs_full_and_drip_deployments(server, tmp_path):
    env, started_s = server
    env = {**env, "MHHS_OUT": str(tmp_path / "landing-default")}
    full, drip, n_rows = _tiny_scenarios(tmp_path)
    out = tmp_path / "landing"

    _prefect(["work-pool", "create", "mhhs-process", "--type", "process"], env)
    t0 = time.monotonic()
    # From deploy/, as the file's header documents (the other way, --prefect-file, is the Kubernetes test's).
    _prefect(["deploy", "--all"], env, cwd=ROOT / "deploy")
    deploy_s = time.monotonic() - t0
    worker = subprocess.Popen(
        PREFECT + ["worker", "start", "--pool", "mhhs-process", "--limit", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        t0 = time.monotonic()
        run = _run_deployment(env, "mhhs-run/quickstart-nightly", {"scenario_url": str(full), "out": str(out), "run_id": "nightly", "workers": 1})
        run_s = time.monotonic() - t0
        t0 = time.monotonic()
        day = _run_deployment(env, "mhhs-drip-feed/drip-daily", {"scenario_url": str(drip), "out": str(out), "workers": 1})
        drip_s = time.monotonic() - t0
    finally:
        _stop(worker)
    print(f"server healthy in {started_s:.1f} s; deploy {deploy_s:.1f} s; full run {run_s:.1f} s (flow {run['wall_s']} s); drip day {drip_s:.1f} s (flow {day['wall_s']} s)")

    assert run["state"] == "COMPLETED", run["logs"][-5:]
    assert run["pool"] == "mhhs-process" and run["schedules"] == ["30 2 * * *"]
    expected_tasks = {"load-scenario", "cleanse-extract", "plan-units", "prepare-run-dir", "generate-and-deliver", "deliver-quarantine", "load-model-report", "participant-readmes", "write-manifest"}
    assert expected_tasks <= set(run["tasks"]) and set(run["tasks"].values()) == {"COMPLETED"}
    assert run["artifacts"] == {"run-summary": "table", "load-model-report": "markdown", "cleansing-report": "markdown"}
    manifest = json.loads((out / "nightly" / "manifest.json").read_text())
    assert f"{manifest['totals']['mpans']} MPANs" in run["summary"] and manifest["totals"]["mpans"] == n_rows - 1
    assert manifest["cleansing"]["quarantined"] == 1
    units = len({f["path"].rsplit("/", 1)[-1].split(".")[0] for f in manifest["files"] if f["dataset"] == "consumption"})
    assert any(line.startswith(f"generate-and-deliver: {units}/{units} units") and "values/s" in line for line in run["logs"]), run["logs"]
    assert any("dashboard http://127.0.0.1:" in line for line in run["logs"]), run["logs"]

    assert day["state"] == "COMPLETED", day["logs"][-5:]
    assert day["pool"] == "mhhs-process" and day["schedules"] == ["30 5 * * *"]
    assert day["artifacts"] == {"run-summary": "table", "load-model-report": "markdown"}
    day_dir = out / "tinydrip-day-2026-10-19"  # the window's first day: none was published before
    day_run = json.loads((day_dir / "manifest.json").read_text())
    assert day_run["window"] == {"start": "2026-10-19", "end": "2026-10-19"}
    central = pa.concat_arrays([pq.read_table(f, columns=["period_end_utc"]).column(0).combine_chunks() for f in (day_dir / "central/central/consumption").glob("*.parquet")])
    days = pc.unique(pc.cast(pc.subtract(central, pa.scalar(dt.timedelta(minutes=30))), pa.timestamp("us")).cast(pa.date32())).to_pylist()
    assert days == [dt.date(2026, 10, 19)] and len(central) == day_run["totals"]["half_hour_values"]
    assert not (tmp_path / "landing-default").exists()  # parameters given at run time won over MHHS_OUT


def test_kubernetes_variant_and_serve_read_the_same_list(server, tmp_path):
    env, _ = server
    env = {**env, "MHHS_OUT": str(tmp_path / "landing")}
    _prefect(["work-pool", "create", "mhhs-kubernetes", "--type", "kubernetes"], env)
    # The documented Kubernetes variant: one deployment per command, pool and image given.
    _prefect(["deploy", "--prefect-file", "deploy/prefect.yaml", "--name", "quickstart-nightly", "--pool", "mhhs-kubernetes", "--job-variable", "image=registry.example/mhhs-pipeline:0.1.0"], env)
    got = _client_script(env, """
        async def main():
            async with get_client() as c:
                d = await c.read_deployment_by_name("mhhs-run/quickstart-nightly")
                print(json.dumps({"pool": d.work_pool_name, "vars": d.job_variables, "out": d.parameters["out"], "entry": d.entrypoint}))
        asyncio.run(main())
    """)
    assert got["pool"] == "mhhs-kubernetes" and got["vars"]["image"] == "registry.example/mhhs-pipeline:0.1.0"
    assert got["out"] == str(tmp_path / "landing") and got["entry"] == "flows.pipeline.mhhs_run"

    # flows.serve: the same deployments, under their own names, with the file's schedules.
    specs = yaml.safe_load(Path(PREFECT_FILE).read_text())["deployments"]
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--out", str(tmp_path / "served"), "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        got = _client_script(env, f"""
            NAMES = {[('mhhs-run' if s['entrypoint'].endswith('mhhs_run') else 'mhhs-drip-feed') + '/' + s['name'] for s in specs]!r}
            SERVED = {str(tmp_path / "served")!r}
            async def main():
                async with get_client() as c:
                    found = {{}}
                    for _ in range(240):
                        try:
                            for name in NAMES:
                                d = await c.read_deployment_by_name(name)
                                if d.parameters.get("out") == SERVED:  # served, not deployed above
                                    found[name] = ([s.schedule.cron for s in d.schedules], d.parameters["out"])
                        except Exception:
                            pass
                        if len(found) == len(NAMES):
                            break
                        await asyncio.sleep(0.5)
                    print(json.dumps(found))
            asyncio.run(main())
        """)
    finally:
        _stop(serve)
    expected = {
        ("mhhs-run" if s["entrypoint"].endswith("mhhs_run") else "mhhs-drip-feed") + "/" + s["name"]: [[x["cron"] for x in s["schedules"]], str(tmp_path / "served")]
        for s in specs
    }
    assert got == expected
