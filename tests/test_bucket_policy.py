"""The bucket-policy template grants each participant its own prefix only."""

from __future__ import annotations

import fnmatch

import pytest

from mhhs_pipeline.io.bucket_policy import TEMPLATE, render_policy
from mhhs_pipeline.io.paths import UnsafePathError


def _allowed(policy, arn, key):
    for st in policy["Statement"]:
        if st["Principal"]["AWS"] == arn and "s3:GetObject" in st["Action"]:
            if any(fnmatch.fnmatchcase(f"arn:aws:s3:::b/{key}", r) for r in st["Resource"]):
                return True
    return False


def test_each_participant_reads_only_its_prefix():
    principals = {("supplier", "GRNX"): "arn:aws:iam::111111111111:role/grnx", ("supplier", "BLUE"): "arn:aws:iam::222222222222:role/blue", ("ldso", "LOND"): "arn:aws:iam::333333333333:role/lond"}
    policy = render_policy(TEMPLATE.read_text(), bucket="b", run_prefix="runs/qs", principals=principals)
    grnx, blue = principals[("supplier", "GRNX")], principals[("supplier", "BLUE")]
    assert _allowed(policy, grnx, "runs/qs/supplier/GRNX/consumption/x.parquet")
    assert not _allowed(policy, grnx, "runs/qs/supplier/BLUE/consumption/x.parquet")
    assert not _allowed(policy, blue, "runs/qs/supplier/GRNX/README.txt")
    assert not _allowed(policy, grnx, "runs/qs/central/central/consumption/x.parquet")
    assert _allowed(policy, grnx, "runs/qs/manifest.json")


@pytest.mark.parametrize("pid", ["*", "GR*X", "../..", "grnx"])
def test_ids_that_could_widen_the_grant_are_refused(pid):
    with pytest.raises(UnsafePathError):
        render_policy(TEMPLATE.read_text(), bucket="b", run_prefix="runs/qs", principals={("supplier", pid): "arn:aws:iam::1:role/x"})
