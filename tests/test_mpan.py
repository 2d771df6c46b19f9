"""MPAN cores: our check digit against the independent `mpan` package, and the synthetic population."""

from __future__ import annotations

import csv

import mpan as mpan_oracle
import numpy as np
from conftest import reference_dir, scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from mhhs_pipeline.core import market
from mhhs_pipeline.core.mpan import check_digit, check_digits_vec, is_valid_core
from mhhs_pipeline.core.registrations import synthesise_registrations

DNO_IDS = sorted(market.DNO_AREAS)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DNO_IDS), st.integers(min_value=0, max_value=10**10 - 1))
def test_check_digit_matches_oracle(distributor, unique):
    first12 = f"{distributor}{unique:010d}"
    valid_digits = [d for d in range(10) if mpan_oracle.is_valid(first12 + str(d))]
    assert valid_digits == [check_digit(first12)]
    assert is_valid_core(first12 + str(check_digit(first12)))
    assert int(check_digits_vec(np.array([int(first12)]))[0]) == check_digit(first12)


def test_synthetic_cores_valid_and_consistent_with_gsp_group():
    reg = synthesise_registrations(scenario(**{"population.mpans": 3000, "population.idno_share": 0.2}), 0, 3000)
    cores = reg.column("mpan_core").to_pylist()
    dist = reg.column("distributor_id").to_pylist()
    gsp = reg.column("gsp_group").to_pylist()
    assert all(is_valid_core(c) for c in cores)
    dno_cores = [c for c, d in zip(cores, dist, strict=True) if d in market.DNO_AREAS]
    assert dno_cores and all(mpan_oracle.is_valid(c) for c in dno_cores[:500])
    for c, d, g in zip(cores, dist, gsp, strict=True):
        assert c[:2] == d
        if d in market.DNO_AREAS:
            assert market.DNO_AREAS[d][1] == g
        else:
            assert d in market.IDNOS and g in market.GSP_GROUPS
    assert {d for d in dist if d in market.IDNOS}, "iDNOs present"
    imports = [c for c, e in zip(cores, reg.column("energy_direction").to_pylist(), strict=True) if e == "I"]
    assert len(set(imports)) == 3000


def test_distributor_table_matches_market_domain_data():
    mdd_dir = reference_dir("mdd")
    rows = list(csv.DictReader(open(mdd_dir / "Market_Participant_Role_377.csv", encoding="latin-1")))
    mdd = {
        r["Distributor Short Code"]: r["Market Participant ID"]
        for r in rows
        if r["Market Participant Role Code"] == "R" and r["Distributor Short Code"] and not r["Effective To Date (MPR)"]
    }
    for dist_id, mpid in market.LDSO_BY_DISTRIBUTOR.items():
        assert mdd.get(dist_id) == mpid, dist_id
    gsp = {r["Gsp Group ID"] for r in csv.DictReader(open(mdd_dir / "GSP_Group_377.csv", encoding="latin-1"))}
    assert set(market.GSP_GROUPS) <= gsp
