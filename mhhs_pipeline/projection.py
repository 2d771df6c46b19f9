"""``mhhs-pipeline plan``: what a scenario will make -- units, files, bytes by format and
participant, core-hours -- without making it.

Nothing here models the generator or the encoders by hand (a model would drift from the
code). Two small measurements of the real thing are scaled instead:

1. **A sample run**: the scenario's own settings on ``SAMPLE_SITES`` sites x ``SAMPLE_DAYS``
   days, run through the real unit pipeline into an in-memory store. It gives, per (role,
   dataset, format), the bytes and files per canonical half-hour value, and the canonical
   values per site-day.
2. **Participants per block**: the registrations of ``SAMPLE_BLOCKS`` blocks of the real
   plan, spread over the population, synthesised (cheap: no consumption). A unit writes
   one file per (present participant, dataset, format), so files follow the participants
   present in each block, not its size.

Files: the sample's files per present participant per unit (registrations: per block),
times the participants present in the average block, times the plan's units; loose DCC
responses (one per MPAN, ``outputs.dcc_bundle: false``) scale with values instead. Bytes
and values scale with site-days. Core-hours use the measured rates in
``measured_rates.json`` (canonical values per second per core, wall time x cores, all
participant copies and raw reads included), written from ``python -m benchmarks.run``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from mhhs_pipeline.core.participants import ldso_ids
from mhhs_pipeline.core.registrations import synthesise_registrations
from mhhs_pipeline.plan import plan_units
from mhhs_pipeline.spec.scenario import Scenario

SAMPLE_SITES = 400
SAMPLE_DAYS = 7
SAMPLE_BLOCKS = 12
_ROLE_COLUMN = {"supplier": "supplier_id", "data_service": "data_service_id"}


def measured_rates() -> dict:
    return json.loads(resources.files("mhhs_pipeline").joinpath("measured_rates.json").read_text())


@dataclass
class Projection:
    scenario: str
    mpans: int
    window: tuple[dt.date, dt.date]
    formats: list[str]
    units: int
    blocks: int
    unit_mpans: int
    unit_days: int
    canonical_values: int
    files: Counter = field(default_factory=Counter)  # (role, dataset, format) -> files
    bytes: Counter = field(default_factory=Counter)  # (role, dataset, format) -> bytes
    participant_bytes: Counter = field(default_factory=Counter)  # (role, participant id) -> bytes
    core_hours: float = 0.0
    rate_used: str = ""
    rates_source: str = ""
    sample: dict = field(default_factory=dict)

    @property
    def total_files(self) -> int:
        return int(sum(self.files.values()))

    @property
    def total_bytes(self) -> int:
        return int(sum(self.bytes.values()))

    def to_dict(self) -> dict:
        by_format: Counter = Counter()
        by_format_files: Counter = Counter()
        by_role: Counter = Counter()
        for (role, _ds, fmt), n in self.bytes.items():
            by_format[fmt] += n
            by_role[role] += n
        for (_role, _ds, fmt), n in self.files.items():
            by_format_files[fmt] += n
        return {
            "scenario": self.scenario,
            "mpans": self.mpans,
            "window": {"start": self.window[0].isoformat(), "end": self.window[1].isoformat()},
            "formats": self.formats,
            "units": self.units,
            "blocks": self.blocks,
            "unit": {"mpans": self.unit_mpans, "days": self.unit_days},
            "canonical_values": self.canonical_values,
            "files": self.total_files,
            "bytes": self.total_bytes,
            "files_by_format": dict(sorted((k, int(v)) for k, v in by_format_files.items())),
            "bytes_by_format": dict(sorted((k, int(v)) for k, v in by_format.items())),
            "bytes_by_role": dict(sorted((k, int(v)) for k, v in by_role.items())),
            "bytes_by_participant": {f"{r}/{p}": int(v) for (r, p), v in sorted(self.participant_bytes.items())},
            "core_hours": round(self.core_hours, 2),
            "rate": self.rate_used,
            "rates_source": self.rates_source,
            "sample": self.sample,
        }

    def render(self) -> str:
        d = self.to_dict()
        lines = [
            f"plan {self.scenario}: {self.mpans:,} import MPANs, {self.window[0]}..{self.window[1]} "
            f"({(self.window[1] - self.window[0]).days + 1} days), formats {', '.join(self.formats)}",
            f"units: {self.units:,} ({self.blocks:,} blocks of {self.unit_mpans:,} MPANs x {self.units // max(self.blocks, 1)} day ranges of up to {self.unit_days} days)",
            f"canonical half-hour values: {self.canonical_values:,} (the central copy; each is also in 3 participant copies)",
            f"files: {self.total_files:,}; bytes: {_size(self.total_bytes)}",
            "by format:          files          bytes",
        ]
        for fmt in d["bytes_by_format"]:
            lines.append(f"  {fmt:<16}{d['files_by_format'].get(fmt, 0):>9,}  {_size(d['bytes_by_format'][fmt]):>12}")
        lines.append("by role:  " + ", ".join(f"{r} {_size(b)}" for r, b in d["bytes_by_role"].items()))
        top = sorted(self.participant_bytes.items(), key=lambda kv: -kv[1])[:8]
        lines.append("largest participants: " + ", ".join(f"{r}/{p} {_size(b)}" for (r, p), b in top))
        lines.append(f"projected core-hours: {self.core_hours:,.1f} ({self.rate_used}; {self.rates_source})")
        return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def _sample_scenario(sc: Scenario) -> Scenario:
    data = sc.model_dump(mode="python")
    sites = min(SAMPLE_SITES, sc.population.mpans)
    last = min(sc.window.end, sc.window.start + dt.timedelta(days=SAMPLE_DAYS - 1))
    data["population"]["mpans"] = sites
    data["window"] = {"start": sc.window.start, "end": last}
    data["partitioning"] = {"mpans_per_unit": sites, "days_per_unit": SAMPLE_DAYS}
    data["inputs"] = {}
    return Scenario.model_validate(data)


def _sample_run(sample: Scenario) -> tuple[list, int, int]:
    """(file records, canonical values, site-days) of the sample scenario, run for real in memory."""
    import fsspec

    from mhhs_pipeline.runner import UnitJob, run_unit

    out = f"memory://mhhs-plan-{uuid.uuid4().hex}"
    try:
        results = [run_unit(UnitJob(sample, out, "sample", u)) for u in plan_units(sample)]
    finally:
        fsspec.filesystem("memory").rm(out.removeprefix("memory://"), recursive=True)
    records = [r for res in results for r in res.records]
    values = sum(r.rows for r in records if r.participant_role == "central" and r.dataset == "consumption" and r.format == "parquet")
    if not values:  # no Parquet in the formats: count the central copy's first tabular format
        fmt = next((r.format for r in records if r.participant_role == "central" and r.dataset == "consumption"), None)
        values = sum(r.rows for r in records if r.participant_role == "central" and r.dataset == "consumption" and r.format == fmt)
    return records, values, sample.population.mpans * sample.window.days


def _present(sc: Scenario, block_starts: list[int]) -> tuple[dict[str, float], set[tuple[str, str]], Counter]:
    """Mean participants per role present in a block, every participant seen, and the
    registration rows seen per LDSO."""
    counts: dict[str, list[int]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    ldso_rows: Counter = Counter()
    for start in block_starts:
        stop = min(start + sc.partitioning.mpans_per_unit, sc.population.mpans)
        reg = synthesise_registrations(sc, start, stop)
        ids = {role: np.unique(np.asarray(reg.column(col).to_numpy(zero_copy_only=False)).astype(str)) for role, col in _ROLE_COLUMN.items()}
        ldso = ldso_ids(np.asarray(reg.column("distributor_id").to_numpy(zero_copy_only=False)).astype(str))
        ldso_rows.update(ldso.tolist())
        ids["ldso"] = np.unique(ldso)
        for role, values in ids.items():
            counts[role].append(len(values))
            seen.update((role, str(v)) for v in values)
    return {role: float(np.mean(v)) for role, v in counts.items()}, seen, ldso_rows


def project(sc: Scenario) -> Projection:
    units = plan_units(sc)
    blocks = math.ceil(sc.population.mpans / sc.partitioning.mpans_per_unit)
    sample = _sample_scenario(sc)
    records, sample_values, sample_site_days = _sample_run(sample)
    per_site_day = sample_values / sample_site_days
    full_values = int(round(per_site_day * sc.population.mpans * sc.window.days))
    scale_values = full_values / max(sample_values, 1)
    scale_sites = sc.population.mpans / max(sample.population.mpans, 1)

    step = max(1, blocks // SAMPLE_BLOCKS)
    starts = [b * sc.partitioning.mpans_per_unit for b in range(0, blocks, step)][:SAMPLE_BLOCKS]
    present, seen, ldso_rows = _present(sc, starts)
    present["central"] = 1.0
    sample_present = {role: len({r.participant_id for r in records if r.participant_role == role}) for role in ("supplier", "data_service", "ldso", "central")}

    p = Projection(
        scenario=sc.name, mpans=sc.population.mpans, window=(sc.window.start, sc.window.end), formats=list(sc.outputs.formats),
        units=len(units), blocks=blocks, unit_mpans=sc.partitioning.mpans_per_unit, unit_days=sc.partitioning.days_per_unit,
        canonical_values=full_values,
    )  # fmt: skip
    role_bytes: Counter = Counter()
    for r in records:
        key = (r.participant_role, r.dataset, r.format)
        if r.dataset == "readme":
            continue
        per_block = r.dataset in ("registrations", "quarantine")
        grow = scale_sites if per_block else scale_values
        p.bytes[key] += r.bytes * grow
        role_bytes[r.participant_role] += r.bytes * grow
        if r.format == "dcc_xml":  # one file per MPAN x service x request period: grows with data
            p.files[key] += grow
        else:
            per_participant = 1 / max(sample_present[r.participant_role], 1)
            p.files[key] += per_participant * present.get(r.participant_role, 1.0) * (blocks if per_block else len(units))
    # Each participant's share of its role's bytes: its share of the registrations sampled.
    shares = _shares(sc, ldso_rows)
    for (role, pid), share in shares.items():
        p.participant_bytes[(role, pid)] = role_bytes[role] * share
    p.files[("all", "readme", "text")] = len(seen) + 1  # a README per participant, and central's
    p.files[("all", "manifest", "json")] = len(seen) + 1  # and a manifest of its own files
    p.files[("central", "report", "png")] = 1  # the load-model report (the manifest lists it, not itself)
    for k in list(p.files):
        p.files[k] = int(round(p.files[k]))
    for k in list(p.bytes):
        p.bytes[k] = int(round(p.bytes[k]))

    rates = measured_rates()
    fmts = set(sc.outputs.formats)
    if fmts <= {"parquet"}:
        name = "parquet"
    elif fmts <= {"csv"}:
        name = "csv"
    elif fmts <= {"parquet", "csv"}:
        name = "parquet_and_csv"
    else:
        name = "all_formats"
    rate = rates["canonical_values_per_core_second"][name]
    p.core_hours = full_values / rate / 3600
    p.rate_used = f"{rate / 1e6:.2f} M canonical values/s/core measured for {name.replace('_', ' ')}"
    p.rates_source = rates["source"]
    p.sample = {"sites": sample.population.mpans, "days": sample.window.days, "canonical_values": sample_values, "blocks_sampled": len(starts)}
    return p


def _shares(sc: Scenario, ldso_rows: Counter) -> dict[tuple[str, str], float]:
    """Each participant's expected share of its role's data, from the scenario's shares
    (suppliers; data services by segment) and, for LDSOs, the sampled registrations."""
    out: dict[tuple[str, str], float] = {}
    for e in sc.participants.suppliers:
        out[("supplier", e.id)] = e.share
    adv = sc.population.advanced_share
    for seg, weight in (("smart", 1 - adv), ("advanced", adv)):
        for e in getattr(sc.participants.data_services, seg):
            out[("data_service", e.id)] = out.get(("data_service", e.id), 0.0) + weight * e.share
    total = sum(ldso_rows.values())
    for pid, n in sorted(ldso_rows.items()):
        out[("ldso", pid)] = n / total
    out[("central", "central")] = 1.0
    return out
