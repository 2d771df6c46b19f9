"""Render the bucket-policy template: each participant may read only its own prefix."""

from __future__ import annotations

import json
import string
from pathlib import Path

from mhhs_pipeline.io.paths import participant_prefix, safe_segment

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "bucket-policy.template.json"


def render_policy(template_text: str, *, bucket: str, run_prefix: str, principals: dict[tuple[str, str], str]) -> dict:
    """A bucket policy with the template's statements for every (role, participant_id) -> ARN."""
    safe_segment(bucket, "bucket")
    for part in run_prefix.strip("/").split("/"):
        safe_segment(part, "run prefix segment")
    statements = []
    for i, ((role, pid), arn) in enumerate(sorted(principals.items())):
        participant_prefix(role, pid)  # refuses ids that could widen the grant (e.g. '*', '..')
        if not arn.startswith("arn:aws:iam::") or any(c in arn for c in '"*\\'):
            raise ValueError(f"principal for {role}/{pid} is not an IAM ARN: {arn!r}")
        text = string.Template(template_text).substitute(
            SID=str(i), PRINCIPAL_ARN=arn, BUCKET=bucket, RUN_PREFIX=run_prefix.strip("/"), ROLE=role, PARTICIPANT_ID=pid
        )
        statements += json.loads(text)["Statement"]
    return {"Version": "2012-10-17", "Statement": statements}
