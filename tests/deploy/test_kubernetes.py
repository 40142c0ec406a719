"""deploy/k8s renders (Kustomize, in Python) into valid objects that run our processes
as the code expects. No cluster or kubectl is needed.

Every overlay under deploy/k8s/overlays renders; every object validates against the
Kubernetes schema (kubernetes-validate's bundled JSON schemas, strict, offline); and
``tests.deploy.k8s.check_rendering`` finds nothing wrong (see its docstring: console
scripts, settings and their values, probes against the real route tables, resources,
non-root, grace periods, selectors, references). Every manifest file is used by a
kustomization. Production runs every process, with the supervisor and the dispatcher at
two replicas and pinned images.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy import k8s, kustomize
from tests.deploy.catalog import DEPLOY, SERVICE_SCRIPTS
from tests.deploy.dockerfile import parse

K8S = DEPLOY / "k8s"
# Missing overlays still yield (failing) tests: nothing is skipped silently.
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml")) or [
    K8S / "overlays" / "dev",
    K8S / "overlays" / "prod",
]
FIXTURES = Path(__file__).parent / "fixtures"


def test_layout() -> None:
    assert (K8S / "base" / "kustomization.yaml").exists(), "deploy/k8s/base has no kustomization"
    names = {p.name for p in OVERLAYS if (p / "kustomization.yaml").exists()}
    assert {"dev", "prod"} <= names, f"overlays found: {sorted(names)}"


def test_every_manifest_parses_and_is_used() -> None:
    used: set[Path] = set()
    for directory in [K8S / "base", *OVERLAYS]:
        _, files = k8s.render(directory)
        used |= files
    for path in sorted(K8S.rglob("*")):
        if path.is_dir():
            continue
        if path.suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(path.read_text()))  # parses
        if path.name.endswith(".md"):
            continue
        assert path.resolve() in used, f"{path.relative_to(DEPLOY)} is used by no kustomization"


def test_base_renders_and_validates() -> None:
    resources, _ = k8s.render(K8S / "base")
    problems = k8s.schema_problems(resources, "base")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_matches_the_code(overlay: Path) -> None:
    problems = k8s.check_overlay(overlay)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_runs_every_process(overlay: Path) -> None:
    rendering = k8s.load_rendering(overlay)
    running = k8s.processes_of(rendering)
    for script in SERVICE_SCRIPTS:
        assert script in running, f"{overlay.name} runs no {script}"
        for container in running[script]:
            assert container.workload["kind"] == "Deployment", container.where
    migrations = [
        c for c in running.get("rcm", []) if c.invocation and "migrate" in c.invocation.argv
    ]
    assert migrations, f"{overlay.name} has no rcm migrate Job"
    assert all(c.workload["kind"] == "Job" for c in migrations)


def test_prod_is_highly_available_and_pinned() -> None:
    rendering = k8s.load_rendering(K8S / "overlays" / "prod")
    for name in ("sweeps-supervisor", "contracts-dispatcher"):
        deployment = k8s.workload(rendering, "Deployment", name)
        assert deployment is not None, f"prod has no Deployment {name}"
        assert deployment["spec"].get("replicas") == 2, f"prod {name}: replicas must be 2"
    for resource in rendering.resources:
        for container in kustomize.all_containers(resource):
            _, tag, digest = kustomize.split_image(container["image"])
            assert digest or (tag and tag != "latest"), (
                f"prod {kustomize.ident(resource)}: image {container['image']} is not pinned"
            )
    assert rendering.external_secrets or rendering.of_kind("Secret"), "prod reads no Secret"


def _fixture_images() -> k8s.Images:
    return k8s.Images(parse(FIXTURES / "docker" / "good.Dockerfile"))


def test_the_good_example_passes() -> None:
    assert k8s.check_overlay(FIXTURES / "k8s" / "good" / "overlay", "good", _fixture_images()) == []


def test_the_bad_example_is_caught() -> None:
    problems = "\n".join(k8s.check_overlay(FIXTURES / "k8s" / "bad", "bad", _fixture_images()))
    for expected in (
        "Job/demo/migrate: schema (1.31): spec.template.spec.containers.0: Additional properties are not allowed ('imagePullPolicyy'",
        "sweeps-worker container worker: env REDIS_URL: Secret stores has no key REDIS_URL",
        "sweeps-worker container worker: no resources.limits.memory",
        "sweeps-worker container worker: runAsNonRoot is not true",
        "NOT_A_SETTING (from env) is not a setting of sweeps-worker",
        "readinessProbe asks GET /readyz on port 9104, a route sweeps-worker does not have",
        "livenessProbe port 'metrics' is not a declared containerPort name",
        "names 'postgres', which does not exist",
        "terminationGracePeriodSeconds is 20 s, but the preStop hook takes 5 s and sweeps-worker may take 30 s",
        "clearinghouse-sandbox container sandbox: envFrom Secret undocumented does not exist",
        "Job/demo/migrate container migrate: command ['rcm', 'migrat']: rcm has no command 'migrat'",
        "Service/demo/clearinghouse-sandbox: targetPort 'web' is no container port name",
        "PodDisruptionBudget/demo/sandbox: minAvailable 1 with 1 replica(s)",
        "PodDisruptionBudget/demo/nothing: selector matches no workload's pods",
        "Secret/demo/stores: DATABASE_URL embeds a password that is not an obvious placeholder",
        "Deployment/demo/oneshot container migrate: rcm migrate is a one-shot",
        "Deployment/demo/oneshot container migrate: no readinessProbe",
        "Ingress/demo/sandbox: /nope goes to sweeps-worker, which routes nothing there",
        "Ingress/demo/sandbox: backend Service missing does not exist",
        "ConfigMap/demo/orphan: used by no workload",
        "container sandbox: the kubelet injects SANDBOX_PORT=tcp://... for Service sandbox",
    ):
        assert expected in problems, f"not reported: {expected}\n{problems}"


def test_schema_validation_is_offline_and_strict() -> None:
    good = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80}]},
    }
    assert k8s.schema_problems([good], "t") == []
    typo = {**good, "spec": {"ports": [{"port": "eighty"}]}}
    assert "is not of type 'integer'" in "".join(k8s.schema_problems([typo], "t"))
    unknown = {**good, "apiVersion": "v2"}
    assert "no schema" in "".join(k8s.schema_problems([unknown], "t"))
