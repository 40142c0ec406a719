"""A small Kustomize renderer: what ``kustomize build DIR`` outputs, for the fields the
manifests use. No kustomize or kubectl binary exists on the build machines.

Supported kustomization fields (anything else raises ``KustomizeError``, so a manifest
that starts using a feature this renderer does not know is caught, not misrendered):

* ``resources``: files (multi-document YAML, ``kind: List`` expanded) and directories
  holding a kustomization, recursively. Remote resources are refused.
* ``configMapGenerator`` / ``secretGenerator`` (``literals``, ``envs``, ``env``,
  ``files``, ``behavior`` create/merge/replace, ``options``) and ``generatorOptions``.
  Generated names get **no hash suffix**: every reference keeps the plain name, which
  is what kustomize's own reference rewriting guarantees, so references stay consistent.
* ``patches`` (file ``path`` or inline ``patch``; strategic merge or JSON 6902, with
  or without ``target``), ``patchesStrategicMerge``, ``patchesJson6902``.
* ``namespace``, ``commonLabels``, ``labels`` (``pairs``, ``includeSelectors``,
  ``includeTemplates``), ``commonAnnotations``, ``replicas``, ``images``.

Kustomize's default load restriction applies: files a kustomization reads (resources,
patches, generator inputs) must be inside its directory; only kustomization
directories may be elsewhere (``../../base``).

Stricter than kustomize on purpose: a patch, ``replicas`` or ``images`` entry that
matches nothing is an error (kustomize ignores it silently, which hides a typo).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.catalog import parse_env_file

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "namespace",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "replicas",
}

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "RuntimeClass",
}

WORKLOADS_WITH_SELECTOR = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}
SCALABLE = {"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"}


class KustomizeError(Exception):
    pass


Resource = dict[str, Any]


def ident(resource: Resource) -> str:
    meta = resource.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{resource.get('kind')}/{(namespace + '/') if namespace else ''}{meta.get('name')}"


def load_yaml_documents(path: Path) -> list[Resource]:
    try:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not valid YAML: {error}") from None
    resources: list[Resource] = []
    for document in documents:
        if not isinstance(document, dict):
            raise KustomizeError(f"{path}: a document is not a mapping")
        if document.get("kind") == "List" or str(document.get("kind", "")).endswith("List"):
            resources += document.get("items") or []
        else:
            resources.append(document)
    for resource in resources:
        for key in ("apiVersion", "kind"):
            if not resource.get(key):
                raise KustomizeError(f"{path}: a resource has no {key}")
        if not (resource.get("metadata") or {}).get("name"):
            raise KustomizeError(f"{path}: a {resource['kind']} has no metadata.name")
    return resources


def find_kustomization(directory: Path) -> Path:
    found = [directory / name for name in KUSTOMIZATION_FILES if (directory / name).is_file()]
    if not found:
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    if len(found) > 1:
        raise KustomizeError(f"{directory}: several kustomization files: {found}")
    return found[0]


def build(directory: Path) -> list[Resource]:
    """``kustomize build directory``, as a list of resources."""
    return _Builder().build(directory.resolve())


class _Builder:
    def __init__(self) -> None:
        self.stack: list[Path] = []
        self.files_read: set[Path] = set()

    # ------------------------------------------------------------------ loading

    def _inside(self, root: Path, relative: str, what: str) -> Path:
        if re.match(r"^[a-z]+://|^github\.com/|^git@", relative):
            raise KustomizeError(f"{root}: remote {what} {relative!r} is not supported")
        path = (root / relative).resolve()
        if root != path and root not in path.parents:
            raise KustomizeError(
                f"{root}: {what} {relative!r} is outside the kustomization directory "
                "(kustomize refuses to load it: security; file is not in or below the root)"
            )
        if not path.exists():
            raise KustomizeError(f"{root}: {what} {relative!r} does not exist")
        self.files_read.add(path)
        return path

    def build(self, directory: Path) -> list[Resource]:
        if directory in self.stack:
            raise KustomizeError(f"cycle of kustomizations: {[*self.stack, directory]}")
        self.stack.append(directory)
        try:
            return self._build(directory)
        finally:
            self.stack.pop()

    def _build(self, root: Path) -> list[Resource]:
        kustomization_file = find_kustomization(root)
        self.files_read.add(kustomization_file)
        kustomization = yaml.safe_load(kustomization_file.read_text()) or {}
        if not isinstance(kustomization, dict):
            raise KustomizeError(f"{kustomization_file}: not a mapping")
        unsupported = sorted(set(kustomization) - SUPPORTED_FIELDS)
        if unsupported:
            raise KustomizeError(
                f"{kustomization_file}: fields not supported by tests/deploy/kustomize.py: "
                f"{', '.join(unsupported)} (extend the renderer before using them)"
            )
        kind = kustomization.get("kind", "Kustomization")
        if kind != "Kustomization":
            raise KustomizeError(f"{kustomization_file}: kind {kind} is not supported")

        resources: list[Resource] = []
        for entry in kustomization.get("resources") or []:
            if re.match(r"^[a-z]+://|^github\.com/|^git@", entry):
                raise KustomizeError(f"{root}: remote resource {entry!r} is not supported")
            target = (root / entry).resolve()
            if target.is_dir():
                self.files_read.add(target)
                loaded = self.build(target)
            else:
                loaded = load_yaml_documents(self._inside(root, entry, "resource"))
            for resource in loaded:
                self._add(resources, resource, root)

        generator_options = kustomization.get("generatorOptions") or {}
        self._check_keys(
            generator_options,
            {"labels", "annotations", "disableNameSuffixHash", "immutable"},
            f"{root}: generatorOptions",
        )
        for spec in kustomization.get("configMapGenerator") or []:
            self._generate(resources, root, spec, "ConfigMap", generator_options)
        for spec in kustomization.get("secretGenerator") or []:
            self._generate(resources, root, spec, "Secret", generator_options)

        for entry in kustomization.get("patchesStrategicMerge") or []:
            if isinstance(entry, str) and "\n" not in entry and entry.endswith((".yaml", ".yml")):
                patches = load_yaml_documents(self._inside(root, entry, "patch"))
            else:
                patches = [yaml.safe_load(entry)]
            for patch in patches:
                self._strategic_patch_by_name(resources, patch, f"{root}: {entry}")
        for entry in kustomization.get("patches") or []:
            self._patch(resources, root, entry)

        if "namespace" in kustomization:
            self._namespace(resources, kustomization["namespace"])
        if kustomization.get("commonLabels"):
            self._labels(resources, kustomization["commonLabels"], selectors=True, templates=True)
        for entry in kustomization.get("labels") or []:
            self._check_keys(
                entry, {"pairs", "includeSelectors", "includeTemplates"}, f"{root}: labels"
            )
            selectors = bool(entry.get("includeSelectors", False))
            self._labels(
                resources,
                entry.get("pairs") or {},
                selectors=selectors,
                templates=selectors or bool(entry.get("includeTemplates", False)),
            )
        if kustomization.get("commonAnnotations"):
            self._annotations(resources, kustomization["commonAnnotations"])
        for entry in kustomization.get("patchesJson6902") or []:
            self._patch(resources, root, entry, json_only=True)
        for entry in kustomization.get("replicas") or []:
            self._replicas(resources, entry, root)
        for entry in kustomization.get("images") or []:
            self._images(resources, entry, root)
        return resources

    @staticmethod
    def _check_keys(value: Any, allowed: set[str], where: str) -> None:
        if not isinstance(value, dict):
            raise KustomizeError(f"{where}: expected a mapping, got {value!r}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise KustomizeError(f"{where}: unsupported keys {unknown}")

    @staticmethod
    def _add(resources: list[Resource], resource: Resource, root: Path) -> None:
        key = ident(resource)
        if any(ident(existing) == key for existing in resources):
            raise KustomizeError(
                f"{root}: may not add resource with an already registered id: {key}"
            )
        resources.append(resource)

    # ------------------------------------------------------------------ generators

    def _generate(
        self,
        resources: list[Resource],
        root: Path,
        spec: dict[str, Any],
        kind: str,
        generator_options: dict[str, Any],
    ) -> None:
        where = f"{root}: {kind} generator {spec.get('name')!r}"
        allowed = {"name", "namespace", "behavior", "literals", "envs", "env", "files", "options"}
        if kind == "Secret":
            allowed.add("type")
        self._check_keys(spec, allowed, where)
        if not spec.get("name"):
            raise KustomizeError(f"{where}: no name")
        data: dict[str, str] = {}

        def put(key: str, value: str, source: str) -> None:
            if key in data:
                raise KustomizeError(f"{where}: key {key!r} given twice ({source})")
            data[key] = value

        for literal in spec.get("literals") or []:
            key, sep, value = str(literal).partition("=")
            if not sep:
                raise KustomizeError(f"{where}: literal {literal!r} is not KEY=VALUE")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            put(key, value, "literals")
        env_files = list(spec.get("envs") or [])
        if spec.get("env"):
            env_files.append(spec["env"])
        for env_file in env_files:
            path = self._inside(root, env_file, "env file")
            try:
                values = parse_env_file(path)
            except ValueError as error:
                raise KustomizeError(f"{where}: {error}") from None
            for key, value in values.items():
                put(key, value, env_file)
        for entry in spec.get("files") or []:
            key, sep, relative = str(entry).partition("=")
            if not sep:
                key, relative = Path(entry).name, entry
            put(key, self._inside(root, relative, "file").read_text(), str(entry))

        options = {**generator_options, **(spec.get("options") or {})}
        self._check_keys(
            options,
            {"labels", "annotations", "disableNameSuffixHash", "immutable"},
            f"{where}: options",
        )
        metadata: dict[str, Any] = {"name": spec["name"]}
        if spec.get("namespace"):
            metadata["namespace"] = spec["namespace"]
        if options.get("labels"):
            metadata["labels"] = dict(options["labels"])
        if options.get("annotations"):
            metadata["annotations"] = dict(options["annotations"])
        resource: Resource = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
        if kind == "Secret":
            resource["type"] = spec.get("type", "Opaque")
            resource["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        else:
            resource["data"] = data
        if options.get("immutable"):
            resource["immutable"] = True

        behavior = spec.get("behavior", "create")
        existing = [
            r
            for r in resources
            if r["kind"] == kind
            and r["metadata"]["name"] == spec["name"]
            and (not spec.get("namespace") or r["metadata"].get("namespace") == spec["namespace"])
        ]
        if behavior == "create":
            if existing:
                raise KustomizeError(f"{where}: behavior create, but {ident(existing[0])} exists")
            resources.append(resource)
        elif behavior in ("merge", "replace"):
            if len(existing) != 1:
                raise KustomizeError(
                    f"{where}: behavior {behavior} needs exactly one existing {kind} named "
                    f"{spec['name']!r}, found {len(existing)}"
                )
            target = existing[0]
            if behavior == "replace":
                target["data"] = resource["data"]
                target.pop("stringData", None)
            else:
                target.setdefault("data", {}).update(resource["data"])
            for key in ("labels", "annotations"):
                if metadata.get(key):
                    target["metadata"].setdefault(key, {}).update(metadata[key])
        else:
            raise KustomizeError(f"{where}: unknown behavior {behavior!r}")

    # ------------------------------------------------------------------ patches

    def _patch(
        self, resources: list[Resource], root: Path, entry: dict[str, Any], json_only: bool = False
    ) -> None:
        where = f"{root}: patch {entry.get('path') or '(inline)'}"
        self._check_keys(entry, {"path", "patch", "target", "options"}, where)
        self._check_keys(entry.get("options") or {}, {"allowNameChange", "allowKindChange"}, where)
        if ("path" in entry) == ("patch" in entry):
            raise KustomizeError(f"{where}: give exactly one of path and patch")
        text = (
            self._inside(root, entry["path"], "patch").read_text()
            if "path" in entry
            else entry["patch"]
        )
        try:
            documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError as error:
            raise KustomizeError(f"{where}: not valid YAML: {error}") from None
        if not documents:
            raise KustomizeError(f"{where}: empty patch")
        target = entry.get("target")
        if isinstance(documents[0], list):  # JSON 6902
            if len(documents) != 1 or target is None:
                raise KustomizeError(
                    f"{where}: a JSON 6902 patch needs one list of ops and a target"
                )
            matches = self._select(resources, target, where)
            for resource in matches:
                index = resources.index(resource)
                resources[index] = json_patch(resource, documents[0], where)
            return
        if json_only:
            raise KustomizeError(f"{where}: patchesJson6902 holds a strategic merge patch")
        for document in documents:
            if target is not None:
                for resource in self._select(resources, target, where):
                    index = resources.index(resource)
                    resources[index] = self._merge_resource(resource, document, where)
            else:
                self._strategic_patch_by_name(resources, document, where)

    def _merge_resource(self, resource: Resource, patch: Resource, where: str) -> Resource:
        patch = copy.deepcopy(patch)
        meta = patch.get("metadata") or {}
        # With a target, the patch's own name/kind are placeholders.
        meta.pop("name", None)
        meta.pop("namespace", None)
        patch.pop("kind", None)
        patch.pop("apiVersion", None)
        return strategic_merge(resource, patch, where)

    def _strategic_patch_by_name(self, resources: list[Resource], patch: Any, where: str) -> None:
        if not isinstance(patch, dict) or not patch.get("kind"):
            raise KustomizeError(f"{where}: a strategic merge patch needs kind and metadata.name")
        name = (patch.get("metadata") or {}).get("name")
        namespace = (patch.get("metadata") or {}).get("namespace")
        if not name:
            raise KustomizeError(f"{where}: a strategic merge patch needs metadata.name")
        matches = [
            r
            for r in resources
            if r["kind"] == patch["kind"]
            and r["metadata"]["name"] == name
            and (namespace is None or r["metadata"].get("namespace") == namespace)
        ]
        if len(matches) != 1:
            raise KustomizeError(
                f"{where}: patch for {patch['kind']}/{name} matches {len(matches)} resources "
                "(kustomize: no matches for Id / multiple matches)"
            )
        index = resources.index(matches[0])
        body = copy.deepcopy(patch)
        if patch.get("apiVersion") and patch["apiVersion"] != matches[0]["apiVersion"]:
            raise KustomizeError(
                f"{where}: patch apiVersion {patch['apiVersion']} differs from the resource's "
                f"{matches[0]['apiVersion']}"
            )
        resources[index] = strategic_merge(matches[0], body, where)

    def _select(
        self, resources: list[Resource], target: dict[str, Any], where: str
    ) -> list[Resource]:
        self._check_keys(
            target,
            {
                "group",
                "version",
                "kind",
                "name",
                "namespace",
                "labelSelector",
                "annotationSelector",
            },
            f"{where}: target",
        )

        def equality(selector: str) -> dict[str, str]:
            pairs = {}
            for part in filter(None, (p.strip() for p in selector.split(","))):
                key, sep, value = part.partition("=")
                if not sep or key.endswith("!"):
                    raise KustomizeError(
                        f"{where}: selector {selector!r}: only key=value is supported"
                    )
                pairs[key.strip()] = value.strip().lstrip("=")
            return pairs

        matches = []
        for resource in resources:
            group, _, version = resource["apiVersion"].rpartition("/")
            meta = resource["metadata"]
            if "kind" in target and resource["kind"] != target["kind"]:
                continue
            if "group" in target and group != target["group"]:
                continue
            if "version" in target and version != target["version"]:
                continue
            if "name" in target and not re.fullmatch(target["name"], meta["name"]):
                continue
            if "namespace" in target and not re.fullmatch(
                target["namespace"], meta.get("namespace") or ""
            ):
                continue
            labels = meta.get("labels") or {}
            if any(
                labels.get(k) != v for k, v in equality(target.get("labelSelector", "")).items()
            ):
                continue
            annotations = meta.get("annotations") or {}
            if any(
                annotations.get(k) != v
                for k, v in equality(target.get("annotationSelector", "")).items()
            ):
                continue
            matches.append(resource)
        if not matches:
            raise KustomizeError(f"{where}: target {target} matches no resource")
        return matches

    # ------------------------------------------------------------------ transformers

    @staticmethod
    def _namespace(resources: list[Resource], namespace: str) -> None:
        for resource in resources:
            if resource["kind"] in CLUSTER_SCOPED:
                continue
            resource["metadata"]["namespace"] = namespace
            if resource["kind"] in ("RoleBinding", "ClusterRoleBinding"):
                for subject in resource.get("subjects") or []:
                    if subject.get("kind") == "ServiceAccount" and not subject.get("namespace"):
                        subject["namespace"] = namespace

    @staticmethod
    def _labels(
        resources: list[Resource], pairs: dict[str, str], *, selectors: bool, templates: bool
    ) -> None:
        pairs = {str(k): str(v) for k, v in pairs.items()}

        def put(node: dict[str, Any], *path: str, create: bool = True) -> None:
            for key in path:
                if key not in node:
                    if not create:
                        return
                    node[key] = {}
                node = node[key]
            node.update(pairs)

        for resource in resources:
            put(resource, "metadata", "labels")
            kind = resource["kind"]
            spec = resource.get("spec")
            if not isinstance(spec, dict):
                continue
            if templates:
                if "template" in spec:
                    put(spec, "template", "metadata", "labels")
                if kind == "CronJob":
                    put(spec, "jobTemplate", "metadata", "labels")
                    put(spec, "jobTemplate", "spec", "template", "metadata", "labels")
            if selectors:
                if kind in WORKLOADS_WITH_SELECTOR:
                    put(spec, "selector", "matchLabels")
                elif kind == "Service":
                    put(spec, "selector")
                elif kind == "Job" or kind == "PodDisruptionBudget":
                    put(spec, "selector", "matchLabels", create=False)
                elif kind == "NetworkPolicy":
                    put(spec, "podSelector", "matchLabels", create=False)

    @staticmethod
    def _annotations(resources: list[Resource], pairs: dict[str, str]) -> None:
        for resource in resources:
            resource["metadata"].setdefault("annotations", {}).update(pairs)
            for template in pod_templates(resource):
                template.setdefault("metadata", {}).setdefault("annotations", {}).update(pairs)

    def _replicas(self, resources: list[Resource], entry: dict[str, Any], root: Path) -> None:
        self._check_keys(entry, {"name", "count"}, f"{root}: replicas")
        found = False
        for resource in resources:
            if resource["kind"] in SCALABLE and resource["metadata"]["name"] == entry["name"]:
                resource.setdefault("spec", {})["replicas"] = int(entry["count"])
                found = True
        if not found:
            raise KustomizeError(f"{root}: replicas entry {entry['name']!r} matches no workload")

    def _images(self, resources: list[Resource], entry: dict[str, Any], root: Path) -> None:
        self._check_keys(entry, {"name", "newName", "newTag", "digest"}, f"{root}: images")
        found = False
        for resource in resources:
            for container in all_containers(resource):
                name, tag, digest = split_image(container.get("image", ""))
                if name != entry["name"]:
                    continue
                found = True
                name = entry.get("newName", name)
                if entry.get("digest"):
                    container["image"] = f"{name}@{entry['digest']}"
                elif entry.get("newTag") is not None:
                    container["image"] = f"{name}:{entry['newTag']}"
                else:
                    suffix = f"@{digest}" if digest else (f":{tag}" if tag else "")
                    container["image"] = name + suffix
        if not found:
            raise KustomizeError(f"{root}: images entry {entry['name']!r} matches no container")


# --------------------------------------------------------------------------- helpers


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/name:tag@sha256:...`` -> (``registry:5000/name``, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def pod_templates(resource: Resource) -> Iterator[dict[str, Any]]:
    """The pod templates (or the pod spec holder) of a workload."""
    spec = resource.get("spec") or {}
    if resource["kind"] == "Pod":
        yield resource
    elif resource["kind"] == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        if isinstance(template, dict):
            yield template
    elif isinstance(spec.get("template"), dict):
        yield spec["template"]


def all_containers(resource: Resource) -> Iterator[dict[str, Any]]:
    for template in pod_templates(resource):
        pod = template.get("spec") or {}
        for key in ("initContainers", "containers", "ephemeralContainers"):
            yield from pod.get(key) or []


# --------------------------------------------------------------------------- merges

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def _merge_key(field: str | None, items: list[Any]) -> str | None:
    if field == "ports":
        sample = [item for item in items if isinstance(item, dict)]
        if sample and all("containerPort" in item for item in sample):
            return "containerPort"
        if sample and all("port" in item for item in sample):
            return "port"
        return None
    return MERGE_KEYS.get(field or "")


def strategic_merge(original: Any, patch: Any, where: str, field: str | None = None) -> Any:
    """Kubernetes strategic merge (the subset manifests use): maps merge recursively,
    ``null`` deletes a key, ``$patch: replace|delete`` directives, lists of objects with a
    known merge key merge item by item, other lists are replaced."""
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "delete":
            return None
        body = {k: v for k, v in patch.items() if not k.startswith("$")}
        if directive == "replace":
            return copy.deepcopy(body)
        if directive not in (None, "merge"):
            raise KustomizeError(f"{where}: unsupported $patch: {directive}")
        for key in patch:
            if key.startswith("$") and key != "$patch" and not key.startswith("$setElementOrder"):
                raise KustomizeError(f"{where}: unsupported directive {key}")
        if not isinstance(original, dict):
            return copy.deepcopy(body)
        merged = copy.deepcopy(original)
        for key, value in body.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                result = strategic_merge(merged[key], value, where, key)
                if result is None:
                    merged.pop(key)
                else:
                    merged[key] = result
            else:
                cleaned = strategic_merge(None, value, where, key)
                if cleaned is not None:
                    merged[key] = cleaned
        return merged
    if isinstance(patch, list):
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            return [
                copy.deepcopy(item)
                for item in patch
                if not (isinstance(item, dict) and "$patch" in item)
            ]
        key = _merge_key(field, [*(original or []), *patch]) if isinstance(original, list) else None
        if key is None:
            return [strategic_merge(None, item, where, None) for item in patch]
        merged_list = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise KustomizeError(f"{where}: an item of {field} has no merge key {key!r}")
            positions = [
                i for i, existing in enumerate(merged_list) if existing.get(key) == item[key]
            ]
            if item.get("$patch") == "delete":
                merged_list = [e for i, e in enumerate(merged_list) if i not in positions]
                continue
            if positions:
                merged_list[positions[0]] = strategic_merge(
                    merged_list[positions[0]], item, where, field
                )
            else:
                merged_list.append(strategic_merge(None, item, where, field))
        return merged_list
    return copy.deepcopy(patch)


def _pointer(path: str, where: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"{where}: JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(document: Any, parts: list[str], where: str) -> Any:
    node = document
    for part in parts:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KustomizeError(f"{where}: JSON pointer part {part!r} is not an index")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                raise KustomizeError(f"{where}: JSON pointer part {part!r} does not exist")
            node = node[part]
        else:
            raise KustomizeError(f"{where}: JSON pointer goes through a scalar at {part!r}")
    return node


def json_patch(document: Resource, operations: list[Any], where: str) -> Resource:
    """RFC 6902: add, remove, replace, move, copy, test."""
    result = copy.deepcopy(document)

    def add(parts: list[str], value: Any) -> None:
        parent = _walk(result, parts[:-1], where)
        last = parts[-1]
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            elif last.isdigit() and int(last) <= len(parent):
                parent.insert(int(last), value)
            else:
                raise KustomizeError(f"{where}: bad list index {last!r}")
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise KustomizeError(f"{where}: cannot add under a scalar")

    def remove(parts: list[str]) -> Any:
        parent = _walk(result, parts[:-1], where)
        last = parts[-1]
        if isinstance(parent, list):
            if not last.isdigit() or int(last) >= len(parent):
                raise KustomizeError(f"{where}: bad list index {last!r}")
            return parent.pop(int(last))
        if isinstance(parent, dict) and last in parent:
            return parent.pop(last)
        raise KustomizeError(f"{where}: path to remove does not exist: {parts}")

    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise KustomizeError(f"{where}: JSON patch operation {operation!r} lacks op/path")
        op = operation["op"]
        parts = _pointer(operation["path"], where)
        if op == "add":
            add(parts, copy.deepcopy(operation["value"]))
        elif op == "remove":
            remove(parts)
        elif op == "replace":
            remove(parts)
            add(parts, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            source = _pointer(operation["from"], where)
            value = remove(source) if op == "move" else copy.deepcopy(_walk(result, source, where))
            add(parts, value)
        elif op == "test":
            if _walk(result, parts, where) != operation["value"]:
                raise KustomizeError(f"{where}: JSON patch test failed at {operation['path']}")
        else:
            raise KustomizeError(f"{where}: unknown JSON patch op {op!r}")
    return result
