"""The Kustomize renderer of tests/deploy/kustomize.py renders what kustomize would."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize import KustomizeError, build, json_patch, strategic_merge

FIXTURES = Path(__file__).parent / "fixtures" / "kustomize"


def _by(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def test_overlay_on_base() -> None:
    resources = build(FIXTURES / "overlay")
    assert [(r["kind"], r["metadata"]["name"]) for r in resources] == [
        ("Deployment", "web"),
        ("Service", "web"),
        ("ConfigMap", "app-config"),
        ("ConfigMap", "app-files"),
        ("ConfigMap", "extra"),
        ("Secret", "app-secret"),
    ]
    assert {r["metadata"]["namespace"] for r in resources} == {"demo-ns"}
    deployment = _by(resources, "Deployment", "web")
    assert deployment["spec"]["replicas"] == 3
    # commonLabels (base) reach selectors and templates; labels (overlay) templates only.
    assert deployment["spec"]["selector"]["matchLabels"] == {"component": "web", "app": "demo"}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"] == {"component": "web", "app": "demo", "tier": "backend"}
    assert template["metadata"]["annotations"] == {"owner": "team"}
    web, sidecar = template["spec"]["containers"]
    assert web["image"] == "registry.example:5000/web:2.0"
    assert sidecar["image"].startswith("example/sidecar@sha256:1111")
    # Strategic merge: env merged by name ($patch: delete, replace, append), map merged.
    assert web["env"] == [{"name": "Y", "value": "20"}, {"name": "Z", "value": "3"}]
    assert web["resources"] == {"limits": {"memory": "128Mi"}}
    assert web["ports"] == [{"containerPort": 8000}]
    assert template["spec"]["terminationGracePeriodSeconds"] == 45
    service = _by(resources, "Service", "web")
    assert service["spec"]["selector"] == {"component": "web", "app": "demo"}
    assert [p["port"] for p in service["spec"]["ports"]] == [80, 9000]
    # Generators: literals, env files, files; merge behaviour; no hash suffix.
    assert _by(resources, "ConfigMap", "app-config")["data"] == {
        "A": "1",
        "B": "three",
        "FROM_FILE": "yes",
        "QUOTED": "with spaces",
        "C": "4",
    }
    assert _by(resources, "ConfigMap", "app-files")["data"] == {
        "greeting.txt": "hello\n",
        "renamed.txt": "hello\n",
    }
    secret = _by(resources, "Secret", "app-secret")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["TOKEN"]) == b"placeholder"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
data:
  a: "1"
"""


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"kustomization.yaml": "resources: [cm.yaml]\nhelmCharts: []\n"}, "helmCharts"),
        ({"kustomization.yaml": "resources: [cm.yaml]\nnamePrefix: x-\n"}, "namePrefix"),
        ({"kustomization.yaml": "resources: [missing.yaml]\n"}, "does not exist"),
        ({"kustomization.yaml": "resources: [cm.yaml, cm.yaml]\n"}, "already registered id"),
        (
            {"kustomization.yaml": "resources: [../outside.yaml]\n", "../outside.yaml": CONFIG_MAP},
            "outside the kustomization directory",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\npatches:\n  - path: p.yaml\n",
                "p.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\ndata: {b: '2'}\n",
            },
            "matches 0 resources",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\nreplicas:\n  - {name: one, count: 2}\n",
            },
            "matches no workload",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\nimages:\n  - {name: nothing, newTag: x}\n"
            },
            "matches no container",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\nconfigMapGenerator:\n  - name: one\n    literals: [a=2]\n",
            },
            "behavior create",
        ),
        (
            {
                "kustomization.yaml": "resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap}\n    patch: |-\n      - op: remove\n        path: /data/zzz\n",
            },
            "does not exist",
        ),
        ({"kustomization.yaml": "resources: [https://example.com/x.yaml]\n"}, "remote"),
    ],
)
def test_unsupported_or_wrong_kustomizations_fail_loudly(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    root = tmp_path / "k"
    root.mkdir()
    _write(root, {"cm.yaml": CONFIG_MAP, **files})
    with pytest.raises(KustomizeError, match=message):
        build(root)


def test_strategic_merge_directives() -> None:
    original = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 1, "name": "x"}], "args": ["1"]},
                {"name": "b"},
            ],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "nodeSelector": {"zone": "a", "disk": "ssd"},
        }
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 2}], "args": ["2"]},
                {"name": "b", "$patch": "delete"},
            ],
            "volumes": [{"name": "w", "configMap": {"name": "c"}}],
            "nodeSelector": {"$patch": "replace", "zone": "b"},
        }
    }
    merged = strategic_merge(original, patch, "test")["spec"]
    assert merged["containers"] == [
        {
            "name": "a",
            "ports": [{"containerPort": 1, "name": "x"}, {"containerPort": 2}],
            "args": ["2"],
        }
    ]
    assert [v["name"] for v in merged["volumes"]] == ["v", "w"]
    assert merged["nodeSelector"] == {"zone": "b"}


def test_json_patch_operations() -> None:
    document = {"a": {"b": [1, 2, 3]}, "c": 1}
    result = json_patch(
        document,
        [
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "replace", "path": "/c", "value": 2},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e~1f"},
            {"op": "test", "path": "/c", "value": 2},
        ],
        "test",
    )
    assert result == {"a": {"b": [9, 2, 3]}, "c": 2, "e/f": 2}
    assert document == {"a": {"b": [1, 2, 3]}, "c": 1}
    with pytest.raises(KustomizeError, match="test failed"):
        json_patch(document, [{"op": "test", "path": "/c", "value": 5}], "test")
