"""``validate`` on manifests and run URLs it did not write: every case gives a readable
report and a non-zero exit, never a traceback; a manifest can never make it read outside
the run directory."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.spec.manifest import ManifestError, parse_manifest
from mhhs_pipeline.validate import validate_run

GOOD_FILE = {
    "path": "supplier/ABCD/consumption/x.parquet",
    "participant_role": "supplier",
    "participant_id": "ABCD",
    "dataset": "consumption",
    "format": "parquet",
    "rows": 1,
    "bytes": 1,
    "sha256": "0" * 64,
}
GOOD = {"run_id": "r", "seed": 1, "scenario_sha256": "a" * 64, "window": {"start": "2026-10-19", "end": "2026-11-01"}, "files": [GOOD_FILE]}


def _run(tmp_path, manifest) -> str:
    run = tmp_path / "out" / "r"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return str(run)


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        ('"hello"', "is a JSON str, not an object"),
        ("[1, 2]", "is a JSON list"),
        ("{not json", "not valid JSON"),
        ({**GOOD, "window": {"start": "2026-02-30", "end": "2026-11-01"}}, "window.start: '2026-02-30' is not a date"),
        ({**GOOD, "window": {"start": "2026-11-02", "end": "2026-11-01"}}, "window: end 2026-11-01 is before start"),
        ({**GOOD, "window": None}, "window is null"),
        ({k: v for k, v in GOOD.items() if k != "files"}, "files: missing"),
        ({**GOOD, "files": "abc"}, "files: Input should be a valid list"),
        ({**GOOD, "files": [{"path": "x"}]}, "files.0.rows: missing"),
        ({**GOOD, "files": [{**GOOD_FILE, "rows": "12"}]}, "files.0.rows: Input should be a valid integer"),
        ({**GOOD, "files": [{**GOOD_FILE, "path": "../../etc/passwd"}]}, "files.0.path: '../../etc/passwd' is not a safe path"),
        ({**GOOD, "files": [{**GOOD_FILE, "path": "/etc/passwd"}]}, "is not a safe path"),
        ({**GOOD, "files": [{**GOOD_FILE, "participant_id": "../x"}]}, "is not an MPID"),
        ({**GOOD, "files": [GOOD_FILE, GOOD_FILE]}, "more than once"),
        ({**GOOD, "seed": "1"}, "seed: Input should be a valid integer"),
    ],
)
def test_a_bad_manifest_gives_a_report_naming_the_field(tmp_path, manifest, says):
    report = validate_run(_run(tmp_path, manifest))
    assert not report.ok
    assert any(says in e for e in report.errors), report.errors
    assert "manifest" in report.render()


def test_a_manifest_path_outside_the_run_is_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    entry = {**GOOD_FILE, "path": "../../secret.txt", "bytes": 11, "sha256": hashlib.sha256(b"do not read").hexdigest()}
    report = validate_run(_run(tmp_path, {**GOOD, "files": [entry]}))
    assert not report.ok and report.files_checked == 0


@pytest.mark.parametrize("url", ["", "/", "out/r/manifest.json", "out/r/manifest.json/", "out/missing", "out/r/manifest.json/x"])
def test_run_urls_that_are_not_runs_are_reported(tmp_path, url):
    _run(tmp_path, GOOD)
    res = run_cli(["validate", url if not url.startswith("out") else str(tmp_path / url)], tmp_path, timeout=60)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED" in res.stdout and "Traceback" not in res.stdout + res.stderr
    if "manifest.json" in url and not url.endswith("/x"):
        assert "is the manifest itself; give its run directory" in res.stdout


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON, st.fixed_dictionaries({k: _JSON for k in GOOD}), st.fixed_dictionaries({**{k: st.just(v) for k, v in GOOD.items()}, "files": st.lists(st.fixed_dictionaries({k: st.one_of(st.just(v), _JSON) for k, v in GOOD_FILE.items()}), max_size=3)})))
def test_any_json_is_a_manifest_or_a_manifest_error(data):
    try:
        m = parse_manifest(data)
    except ManifestError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return
    for f in m.files:  # what passes is safe to open under the run directory
        assert not f.path.startswith("/") and ".." not in f.path.split("/")
