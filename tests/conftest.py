"""Shared fixtures: scenarios, the shared reference folder, and run helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mhhs_pipeline.spec.scenario import Scenario, apply_overrides_to_yaml, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
# Reference material (Elexon DIP schemas, DUIS/MMC XSDs, Market Domain Data) lives outside
# the project: one setting locates it; tests that need it skip, naming the setting, when it
# is absent. CI sets MHHS_NO_SKIPS=1, which turns every skip into a failure.
REFERENCE_ENV = "MHHS_REFERENCE_DIR"
NO_SKIPS_ENV = "MHHS_NO_SKIPS"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
CLI = [sys.executable, "-m", "flows.cli"]


def reference_dir(kind: str) -> Path:
    """``<MHHS_REFERENCE_DIR>/<kind>`` (``dip``, ``duis``, ``mdd``), or skip the test."""
    base = Path(os.environ.get(REFERENCE_ENV) or DEFAULT_REFERENCE)
    path = base / kind
    if not path.is_dir() or not any(path.iterdir()):
        pytest.skip(f"reference folder {path} not found: set {REFERENCE_ENV} to the folder holding dip/, duis/ and mdd/ (default {DEFAULT_REFERENCE})")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With MHHS_NO_SKIPS=1 (CI), a skipped test fails: CI always runs every test."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get(NO_SKIPS_ENV) == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, and {NO_SKIPS_ENV}=1 forbids skips: {reason}"


def scenario(**overrides) -> Scenario:
    """The quickstart scenario with dotted-path overrides (``population.mpans=200``)."""
    text = apply_overrides_to_yaml(QUICKSTART.read_text(), {k.replace("__", "."): v for k, v in overrides.items()})
    return parse_scenario(text)


@pytest.fixture
def quickstart() -> Scenario:
    return parse_scenario(QUICKSTART.read_text())


def cli_env(tmp_path: Path) -> dict:
    """Environment for CLI subprocesses: own Prefect home, analytics off, no user config."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def run_cli(args: list[str], tmp_path: Path, timeout: int = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        CLI + args, cwd=ROOT, env=env or cli_env(tmp_path), capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    """A free TCP port on loopback, for servers the tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
