"""deploy/Dockerfile and deploy/kubernetes/, checked offline (no cluster, no Docker engine).

Built-in kinds are validated against the Kubernetes API schemas of kubernetes-validate
(strict: unknown fields rejected); the operator's ``DaskCluster`` against the CRD schema
shipped in dask-kubernetes, made strict the way the API server treats a structural schema
(unknown fields are pruned, and rejected under kubectl's default strict field validation);
the pod specs and Service embedded in it also against the Kubernetes API schemas. Then the
facts that could silently go wrong: worker sizes against the measured peak, one image,
secrets only by reference, the Dask settings coming from the image's /etc/dask file only,
and the command lines parsed by the very CLIs (dask, prefect) that will run them.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import dask.config
import dask_kubernetes
import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import ROOT
from dask.utils import parse_bytes

from mhhs_pipeline.distributed import WORKER_CONFIG, worker_config

K8S_VERSION = "1.33.0"  # the Kubernetes API the built-in kinds are validated against
KUBE_DIR = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
TEMPLATE = KUBE_DIR / "work-pool" / "base-job-template.json"
README = KUBE_DIR / "README.md"
CRD_DIR = Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"

IMAGE = "mhhs-pipeline:0.1.0"
NAMESPACE = "mhhs"
POOL = "mhhs-kubernetes"
# The README's measurement: peak worker RSS with all six formats at 1,000-MPAN x 28-day
# units (GB read as GiB, the larger); the request must leave 25 % headroom over it.
MEASURED_PEAK_BYTES = 1.04 * 2**30
HEADROOM = 1.25
# Set by the operator in every worker container (dask_kubernetes/operator/controller).
OPERATOR_WORKER_ENV = {"DASK_WORKER_NAME", "DASK_SCHEDULER_ADDRESS"}
SCHEDULER_SERVICE = "{name}-scheduler"  # the operator's SCHEDULER_NAME_TEMPLATE
BUILTIN_KINDS = {"Namespace", "ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"}


# --------------------------------------------------------------------------- loading


def _manifest_files() -> list[Path]:
    """What ``kubectl apply -f deploy/kubernetes/`` reads: .yaml/.yml/.json, not recursive."""
    return sorted(p for p in KUBE_DIR.iterdir() if p.is_file() and p.suffix in {".yaml", ".yml", ".json"})


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append(doc)
    return docs


DOCS = _documents()


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _template() -> dict[str, Any]:
    return json.loads(TEMPLATE.read_text())


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod any manifest or the pool's job template starts."""
    out = []
    for doc in DOCS:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "DaskCluster":
            out.append((f"{name} scheduler", doc["spec"]["scheduler"]["spec"]))
            out.append((f"{name} worker", doc["spec"]["worker"]["spec"]))
        elif doc["kind"] == "Deployment":
            out.append((name, doc["spec"]["template"]["spec"]))
    out.append(("work pool job template", _template()["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]))
    return out


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{where} {c['name']}", c) for where, spec in _pod_specs() for c in spec.get("containers", []) + spec.get("initContainers", [])]


def _worker_container() -> dict[str, Any]:
    (container,) = _one("DaskCluster", "mhhs-dask")["spec"]["worker"]["spec"]["containers"]
    return container


def _scheduler_address() -> str:
    cluster = _one("DaskCluster", "mhhs-dask")
    service = SCHEDULER_SERVICE.format(name=cluster["metadata"]["name"])
    return f"tcp://{service}.{cluster['metadata']['namespace']}.svc.cluster.local:8786"


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env by name (the job template's is a placeholder, ``{{ env }}``)."""
    env = container.get("env", [])
    return {e["name"]: e for e in env} if isinstance(env, list) else {}


_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(value: str) -> float:
    """A Kubernetes resource quantity (``1.5Gi``, ``500m``, ``2``) as a number."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


def _option(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"{name} given {args.count(name)} times in {args}"
    return args[args.index(name) + 1]


# --------------------------------------------------------------------------- CRD schemas


def _strict(schema: Any) -> Any:
    """The CRD's OpenAPI v3 schema as a JSON schema that rejects what the API server would.

    Objects with ``properties`` and neither ``additionalProperties`` nor
    ``x-kubernetes-preserve-unknown-fields`` get ``additionalProperties: false``;
    ``nullable`` admits null; ``x-kubernetes-int-or-string`` admits both; embedded resources
    admit apiVersion/kind/metadata; the other ``x-kubernetes-*`` keys only annotate.
    """
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if schema.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if (
        "properties" in out
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator, for every CRD the installed operator ships."""
    validators = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # Every object has apiVersion, kind and metadata (checked by the API server).
            schema["properties"].update(
                apiVersion={"const": f"{group}/{version['name']}"},
                kind={"const": kind},
                metadata={
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
                },
            )
            schema.setdefault("required", []).extend(["apiVersion", "kind", "metadata"])
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            cls.check_schema(schema)
            validators[(f"{group}/{version['name']}", kind)] = cls(schema)
    return validators


@pytest.fixture(scope="module")
def crd_validators():
    validators = _crd_validators()
    assert ("kubernetes.dask.org/v1", "DaskCluster") in validators
    return validators


def _crd_errors(validators, doc: dict[str, Any]) -> list[str]:
    validator = validators[(doc["apiVersion"], doc["kind"])]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _dask_cluster_parts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The DaskCluster's pod specs and Service as the objects the operator makes of them."""
    name = doc["metadata"]["name"]
    meta = {"name": name, "namespace": doc["metadata"]["namespace"]}
    return [
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": doc["spec"]["scheduler"]["spec"]},
        {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": doc["spec"]["worker"]["spec"]},
        {"apiVersion": "v1", "kind": "Service", "metadata": {**meta, "name": SCHEDULER_SERVICE.format(name=name)}, "spec": doc["spec"]["scheduler"]["service"]},
    ]


def _k8s_validate(obj: dict[str, Any]) -> str:
    return kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# --------------------------------------------------------------------------- schemas


def test_every_file_kubectl_applies_is_a_kubernetes_object():
    names = {p.name for p in _manifest_files()}
    assert {"namespace.yaml", "dask-cluster.yaml", "prefect-worker.yaml", "prefect-server.yaml"} <= names
    kinds = set()
    for doc in DOCS:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert doc["metadata"].get("name")
        kinds.add(doc["kind"])
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
    assert kinds == BUILTIN_KINDS | {"DaskCluster"}
    assert _one("Namespace", NAMESPACE)
    # No Secret is shipped: they are created by hand (README), never committed.
    assert all(doc["kind"] != "Secret" for doc in DOCS)


def test_dask_cluster_matches_the_operators_crd(crd_validators):
    dask_docs = [d for d in DOCS if d["apiVersion"].startswith("kubernetes.dask.org/")]
    assert [d["kind"] for d in dask_docs] == ["DaskCluster"]
    for doc in dask_docs:
        assert _crd_errors(crd_validators, doc) == []


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["spec"]["worker"].update(replica=16), "replica"),  # misspelt field
        (lambda d: d["spec"]["worker"].update(replicas="16"), "'16' is not of type 'integer'"),
        (lambda d: d["spec"]["scheduler"].pop("service"), "'service' is a required property"),
        (lambda d: d["spec"]["worker"]["spec"]["containers"][0].update(imagee=IMAGE), "imagee"),
        (lambda d: d["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"].update(cpu=1), "1 is not of type 'string'"),
        (lambda d: d.update(status={"phase": 1}), "1 is not of type 'string'"),
        (lambda d: d.update(apiVersion="kubernetes.dask.org/v2"), "'kubernetes.dask.org/v1' was expected"),
    ],
)
def test_crd_validation_rejects_a_broken_dask_cluster(crd_validators, mutate, expected):
    doc = copy.deepcopy(_one("DaskCluster", "mhhs-dask"))
    mutate(doc)
    errors = _crd_errors(crd_validators, {**doc, "apiVersion": "kubernetes.dask.org/v1"}) if doc["apiVersion"].endswith("v2") else _crd_errors(crd_validators, doc)
    if doc["apiVersion"].endswith("v2"):  # no CRD serves that version
        assert (doc["apiVersion"], doc["kind"]) not in crd_validators
        return
    assert any(expected in e for e in errors), errors


def test_dask_clusters_pods_and_service_are_valid_kubernetes_objects():
    for doc in DOCS:
        if doc["kind"] == "DaskCluster":
            for part in _dask_cluster_parts(doc):
                assert _k8s_validate(part) == "1.33"


def test_builtin_kinds_are_valid_kubernetes_objects():
    checked = set()
    for doc in DOCS:
        if doc["kind"] in BUILTIN_KINDS:
            assert _k8s_validate(doc) == "1.33"
            checked.add(doc["kind"])
    assert checked == BUILTIN_KINDS


def test_kubernetes_validation_rejects_a_broken_object():
    worker = _dask_cluster_parts(_one("DaskCluster", "mhhs-dask"))[1]
    broken = copy.deepcopy(worker)
    broken["spec"]["containers"][0]["resource"] = broken["spec"]["containers"][0].pop("resources")
    with pytest.raises(kubernetes_validate.ValidationError, match="resource"):
        _k8s_validate(broken)
    deployment = copy.deepcopy(_one("Deployment", "prefect-worker"))
    deployment["spec"]["replicas"] = "1"
    with pytest.raises(kubernetes_validate.ValidationError):
        _k8s_validate(deployment)


def test_work_pool_template_renders_a_valid_job():
    """The Job the Prefect kubernetes worker would submit, rendered by prefect-kubernetes."""
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    template = _template()
    config = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(template, {"image": f"registry.example/{IMAGE}"}, client=MagicMock())
    )
    config.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="brave-otter"))
    job = config.job_manifest
    assert _k8s_validate(job) == "1.33"
    assert job["metadata"]["namespace"] == NAMESPACE
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example/{IMAGE}"
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert _env(container)["MHHS_DASK_ADDRESS"]["value"] == _scheduler_address()
    # Only the defaults differ from the installed worker's own template variables, so an
    # upgrade of prefect-kubernetes that changes them fails here rather than on a cluster.
    default = KubernetesWorker.get_default_base_job_template()["variables"]
    ours = copy.deepcopy(template["variables"])
    for name in ("namespace", "image", "env"):
        ours["properties"][name].pop("default")
        default["properties"][name].pop("default", None)
    assert ours == default


# --------------------------------------------------------------------------- facts


def test_worker_resources_fit_the_measured_peak():
    container = _worker_container()
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert _quantity(requests["memory"]) >= MEASURED_PEAK_BYTES * HEADROOM
    assert _quantity(limits["memory"]) >= _quantity(requests["memory"])
    # Dask pauses/restarts the worker before the kernel OOM-kills the container.
    dask_limit = parse_bytes(_option(container["args"], "--memory-limit"))
    assert MEASURED_PEAK_BYTES < dask_limit <= _quantity(limits["memory"])
    assert _quantity(requests["cpu"]) == _quantity(limits["cpu"]) == 1
    assert _option(container["args"], "--nthreads") == "1"


def test_dask_command_lines_parse_and_reach_the_scheduler():
    from distributed.cli.dask_scheduler import main as scheduler_cli
    from distributed.cli.dask_worker import main as worker_cli

    cluster = _one("DaskCluster", "mhhs-dask")
    (scheduler,) = cluster["spec"]["scheduler"]["spec"]["containers"]
    worker = _worker_container()
    assert scheduler["args"][:2] == ["dask", "scheduler"] and worker["args"][:2] == ["dask", "worker"]
    s = scheduler_cli.make_context("dask scheduler", scheduler["args"][2:]).params
    w = worker_cli.make_context("dask worker", worker["args"][2:]).params
    assert str(s["port"]) == "8786"
    assert w["nthreads"] == 1 and w["name"] == "$(DASK_WORKER_NAME)"
    assert w["scheduler"] == "$(DASK_SCHEDULER_ADDRESS)"  # the operator sets it: _scheduler_address()
    # Listening on 0.0.0.0 without a contact address, a worker registers as tcp://0.0.0.0.
    if w["listen_address"] and "0.0.0.0" in w["listen_address"]:
        assert w["contact_address"], "--listen-address 0.0.0.0 needs --contact-address"
    # Every $(VAR) in any container's args is defined where Kubernetes expands it.
    for where, container in _containers():
        defined = set(_env(container)) | (OPERATOR_WORKER_ENV if "DaskCluster" in where else set())
        argv = [a for key in ("command", "args") if isinstance(container.get(key), list) for a in container[key]]
        for arg in argv:
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                assert var in defined, f"{where}: $({var}) is not set"
    # The scheduler Service exposes the ports, by names the scheduler container declares.
    ports = {p["name"]: p["containerPort"] for p in scheduler["ports"]}
    service = {p["port"]: p["targetPort"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}
    assert service == {8786: "tcp-comm", 8787: "http-dashboard"}
    assert ports == {"tcp-comm": 8786, "http-dashboard": 8787}
    assert cluster["spec"]["scheduler"]["service"]["selector"] == {
        "dask.org/cluster-name": cluster["metadata"]["name"],
        "dask.org/component": "scheduler",
    }


def test_probes_name_declared_ports():
    for where, container in _containers():
        declared = {p["name"] for p in container.get("ports", [])} | {p["containerPort"] for p in container.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in container and "httpGet" in container[probe]:
                assert container[probe]["httpGet"]["port"] in declared, f"{where} {probe}"


def test_one_image_everywhere():
    images = {where: c["image"] for where, c in _containers() if "work pool" not in where}
    assert images and set(images.values()) == {IMAGE}, images
    assert _template()["variables"]["properties"]["image"]["default"] == IMAGE


def test_prefect_worker_serves_the_kubernetes_pool():
    from prefect.cli._app import _app as prefect_cli

    deployment = _one("Deployment", "prefect-worker")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"][0] == "prefect"
    command, bound, _ = prefect_cli.parse_args(container["args"][1:], exit_on_error=False, print_error=False)
    assert command.__name__ == "start" and command.__module__ == "prefect.cli.worker"
    assert bound.arguments["work_pool_name"] == POOL
    assert bound.arguments["worker_type"] == "kubernetes"
    # The template it creates the pool from is in the image (the Dockerfile copies deploy/).
    image_path = Path(bound.arguments["base_job_template"])
    assert image_path.is_relative_to("/opt/mhhs")
    assert ROOT / image_path.relative_to("/opt/mhhs") == TEMPLATE
    env = _env(container)
    assert env["PREFECT_API_URL"]["valueFrom"]["configMapKeyRef"] == {"name": "prefect-api", "key": "PREFECT_API_URL"}
    assert _one("ConfigMap", "prefect-api")["data"]["PREFECT_API_URL"].startswith("http")
    assert env["PREFECT_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["MHHS_DASK_ADDRESS"]["value"] == _scheduler_address()
    assert _template()["variables"]["properties"]["env"]["default"]["MHHS_DASK_ADDRESS"] == _scheduler_address()
    # RBAC: the worker's ServiceAccount may do in its namespace what the worker does.
    assert spec["serviceAccountName"] == "prefect-worker"
    binding = _one("RoleBinding", "prefect-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prefect-worker", "namespace": NAMESPACE}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "prefect-worker"}
    granted = {
        (group, resource, verb)
        for rule in _one("Role", "prefect-worker")["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")}
    needed |= {("", "pods", v) for v in ("get", "list", "watch")} | {("", "pods/log", "get"), ("", "events", "create")}
    assert needed <= granted, needed - granted
    # A namespaced Role cannot serve the observer's default cluster-wide watch; jobs go here.
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"]["value"] == NAMESPACE
    assert _template()["variables"]["properties"]["namespace"]["default"] == NAMESPACE


_CREDENTIAL_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(
    r"(AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key id
    r"|pnu_[A-Za-z0-9]{20,}"  # Prefect API key
    r"|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"  # AWS secret access key shape
    r"|://[^/\s:@]+:[^/\s@]+@"  # user:password in a URL
)


def _strings(tree: Any):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _strings(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _strings(value)
    elif isinstance(tree, str):
        yield tree


def _credential_findings(containers) -> list[str]:
    found = []
    for where, container in containers:
        for entry in _env(container).values():
            if _CREDENTIAL_NAME.search(entry["name"]) and "secretKeyRef" not in entry.get("valueFrom", {}):
                found.append(f"{where}: {entry['name']} not from a Secret")
        for ref in container.get("envFrom", []):
            if "secretRef" not in ref and "configMapRef" not in ref:
                found.append(f"{where}: envFrom {ref}")
    for text in [*_strings(DOCS), *_strings(_template())]:
        if _CREDENTIAL_VALUE.search(text):
            found.append(f"credential-like value {text[:12]}...")
    return found


def test_no_credentials_in_manifests():
    assert _credential_findings(_containers()) == []
    # Both object-store users read the same Secret, by reference only.
    for where, container in _containers():
        if "worker worker" in where or "work pool" in where:
            assert {"secretRef": {"name": "mhhs-object-store", "optional": True}} in container["envFrom"], where
    # And the check can fail.
    leaky = [("leaky", {"env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]})]
    assert _credential_findings(leaky)
    assert _CREDENTIAL_VALUE.search("AKIA" + "ABCDEFGHIJKLMNOP")


def test_dask_settings_come_only_from_the_images_etc_dask_file():
    """Nothing of mhhs_pipeline/dask_worker.yaml is hand-copied into manifests or image."""
    settings = worker_config()
    environ = {k.rsplit(".", 1)[1] for k in settings if k.startswith("distributed.nanny.pre-spawn-environ.")}
    assert environ  # MALLOC_ARENA_MAX, ...
    pattern = re.compile(r"MALLOC_|MIMALLOC_|NUMPY_MADVISE_|DASK_DISTRIBUTED__|" + "|".join(map(re.escape, environ)))
    for where, container in _containers():
        for name in _env(container):
            assert not pattern.search(name), f"{where}: {name} belongs in /etc/dask/mhhs.yaml"
    assert not any(pattern.search(n) for n in _template()["variables"]["properties"]["env"]["default"])
    for path in [*_manifest_files(), TEMPLATE, DOCKERFILE]:
        assert not pattern.search(path.read_text()), f"{path.name} repeats a setting of dask_worker.yaml"


# --------------------------------------------------------------------------- Dockerfile


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, args = pending.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending
    return out


def _dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")] if path.exists() else []


def _ignored(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.lstrip("*/")) or rel.startswith(p.rstrip("/") + "/") for p in _dockerignore())


def test_dockerfile_base_user_workdir_and_env():
    steps = _instructions()
    froms = [a for k, a in steps if k == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", froms[0]), froms[0]
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1].split(":")[0].isdigit()  # numeric: runAsNonRoot can verify it
    assert [a for k, a in steps if k == "WORKDIR"][-1] == "/opt/mhhs"
    env = " ".join(a for k, a in steps if k == "ENV")
    assert "MHHS_HOME=/opt/mhhs" in env and "PREFECT_SERVER_ANALYTICS_ENABLED=false" in env
    # Prefect's kubernetes worker and the manifests pass the whole command as args.
    assert not [a for k, a in steps if k == "ENTRYPOINT"]
    assert not any(_CREDENTIAL_NAME.search(a.split("=")[0]) for k, a in steps if k in {"ENV", "ARG"})


def test_dockerfile_installs_from_the_lock_with_the_kubernetes_extra():
    steps = _instructions()
    runs = [a for k, a in steps if k == "RUN" and "pip install" in a]
    assert len(runs) == 1
    install = shlex.split(runs[0])
    assert install[:2] == ["pip", "install"] and "--no-cache-dir" in install
    assert _option(install, "-c") == "requirements.lock"
    assert _option(install, "-e") == "/opt/mhhs[kubernetes]"
    # The lock is copied before that RUN, and pins the extra's package at its version.
    copied_before = [a for k, a in steps[: steps.index(("RUN", runs[0]))] if k == "COPY"]
    assert any("requirements.lock" in a.split()[:-1] for a in copied_before)
    lock = dict(ln.split("==") for ln in (ROOT / "requirements.lock").read_text().split())
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for requirement in extras["kubernetes"] + [r for r in extras["test"] if "kubernetes" in r]:
        name, version = requirement.split("==")
        assert lock.get(name) == version, requirement


def test_dockerfile_copies_existing_files_and_installs_the_dask_settings():
    steps = _instructions()
    copies = [shlex.split(a) for k, a in steps if k == "COPY"]
    assert copies
    for parts in copies:
        assert not any(p.startswith("--from") for p in parts)
        for source in parts[:-1]:
            path = ROOT / source
            assert path.exists(), f"COPY source {source} is not in the repo"
            assert not _ignored(source.rstrip("/")), f"COPY source {source} is excluded by .dockerignore"
    assert ["mhhs_pipeline/dask_worker.yaml", "/etc/dask/mhhs.yaml"] in copies
    # The worker's --base-job-template and the deployments' scenarios are in the image.
    copied = [p.rstrip("/") for parts in copies for p in parts[:-1]]
    for needed in ["deploy/kubernetes/work-pool/base-job-template.json", "configs/quickstart.yaml"]:
        assert any(needed == c or needed.startswith(c + "/") for c in copied), needed
    prefect_yaml = ROOT / "deploy" / "prefect.yaml"
    if prefect_yaml.exists():
        for deployment in yaml.safe_load(prefect_yaml.read_text())["deployments"]:
            scenario = deployment["parameters"]["scenario_url"]
            assert (ROOT / scenario).exists() and any(scenario.startswith(c + "/") for c in copied), scenario


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    for path in [".venv", ".git", "landing", "benchmarks/results", "mhhs_pipeline/__pycache__"]:
        assert _ignored(path), path
    assert not _ignored("mhhs_pipeline/dask_worker.yaml")


def test_etc_dask_file_yields_the_embedded_clusters_settings(tmp_path):
    """What Dask reads from /etc/dask/mhhs.yaml equals what local_cluster() sets."""
    etc_dask = tmp_path / "etc-dask"
    etc_dask.mkdir()
    shutil.copy(WORKER_CONFIG, etc_dask / "mhhs.yaml")
    collected = dask.config.collect(paths=[str(etc_dask)], env={})
    flat = {}

    def walk(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(collected)
    assert flat == worker_config()
    # And a fresh Dask process, defaults included, with only that folder as its root config
    # (the image's /etc/dask) ends with the same values.
    keys = sorted(worker_config())
    code = "import json, sys, dask, distributed; print(json.dumps({k: dask.config.get(k) for k in sys.argv[1:]}))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env.update(DASK_ROOT_CONFIG=str(etc_dask), DASK_CONFIG=str(tmp_path / "no-user-config"))
    result = subprocess.run([sys.executable, "-c", code, *keys], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(result.stdout) == worker_config()


# --------------------------------------------------------------------------- README


def _readme_commands() -> list[list[str]]:
    """Every `prefect ...` line of the README's shell blocks, as argv (env prefix dropped)."""
    commands, in_block = [], False
    text = README.read_text().replace("\\\n", " ")  # continuation lines
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```bash"
            continue
        if in_block:
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words = words[1:]
            if words and words[0] == "prefect":
                commands.append(words)
    return commands


def test_readme_prefect_commands_parse():
    from prefect.cli._app import _app as prefect_cli

    commands = _readme_commands()
    assert len(commands) >= 4
    seen = set()
    for argv in commands:
        command, bound, _ = prefect_cli.parse_args(argv[1:], exit_on_error=False, print_error=False)
        seen.add(f"{command.__module__}.{command.__name__}")
        assert "deploy_all" not in bound.arguments, "--all ignores --pool and --job-variable"
        if "work_pool_name" in bound.arguments:
            assert bound.arguments["work_pool_name"] == POOL
        if command.__name__ == "create":
            assert Path(bound.arguments["base_job_template"]) == TEMPLATE.relative_to(ROOT)
    assert {"prefect.cli.work_pool.create", "prefect.cli.deploy._commands.deploy"} <= seen
    with pytest.raises(Exception, match="--pol"):
        prefect_cli.parse_args(["worker", "start", "--pol", POOL], exit_on_error=False, print_error=False)
    # The README's deployment names exist in deploy/prefect.yaml.
    prefect_yaml = ROOT / "deploy" / "prefect.yaml"
    names = {d["name"] for d in yaml.safe_load(prefect_yaml.read_text())["deployments"]}
    for argv in commands:
        if "--name" in argv:
            assert _option(argv, "--name") in names
