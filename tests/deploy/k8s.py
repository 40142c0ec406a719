"""Static checks of rendered Kubernetes objects against the code and the schema.

``check_overlay(directory)`` renders a kustomization (``tests.deploy.kustomize``) and
reports, for the whole rendering:

* every object validates against the Kubernetes JSON schema of ``K8S_VERSION``
  (``kubernetes-validate``'s bundled schemas, strict: unknown fields are errors);
* every container of ours (Deployment, StatefulSet, DaemonSet, Job, CronJob) runs a
  console script; the variables it gets (``env`` and ``envFrom``, resolved through the
  rendered ConfigMaps and Secrets; an external Secret's keys must be documented in the
  overlay's kustomization.yaml) are settings of that process, the settings it needs are
  set and pass its validation, URLs to other Services name a Service, port and route
  that exist;
* its probes (httpGet path and port, named ports resolved) ask routes the process has
  on the port it listens on; readiness and liveness exist; liveness never uses a
  route that depends on the database; the gateway's readiness is its own ``/readyz``;
* resources (requests cpu+memory, limits memory), ``runAsNonRoot`` (with a numeric
  user), ``terminationGracePeriodSeconds`` at least the preStop hook plus the process's
  shutdown grace plus a margin;
* Service, PodDisruptionBudget and HorizontalPodAutoscaler selectors and targets match
  a workload; Service target ports exist on the selected pods; Ingress backends exist;
  ConfigMaps, Secrets and ServiceAccounts referenced exist.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deploy import kustomize
from tests.deploy.catalog import (
    DEPLOY,
    PROCESSES,
    Bound,
    Invocation,
    bound_listeners,
    console_scripts,
    effective,
    has_route,
    resolve_command,
    route_paths,
    settings_env_names,
)
from tests.deploy.checks import (
    GRACE_MARGIN_SECONDS,
    Peer,
    check_env,
    check_healthcheck_command,
    check_references,
    check_route,
    check_secrets,
)
from tests.deploy.dockerfile import Dockerfile, Stage, parse, programs

K8S_VERSION = "1.31"
"""The oldest Kubernetes the manifests must work on (schemas of kubernetes-validate)."""

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
DEFAULT_TERMINATION_GRACE = 30
SCHEMALESS_ALLOWED: set[tuple[str, str]] = set()
"""(apiVersion, kind) of custom resources the schema validator cannot know (none yet)."""

Resource = dict[str, Any]


def render(directory: Path) -> tuple[list[Resource], set[Path]]:
    builder = kustomize._Builder()
    resources = builder.build(directory.resolve())
    return resources, builder.files_read


def schema_problems(resources: list[Resource], where: str) -> list[str]:
    import kubernetes_validate

    problems = []
    for resource in resources:
        label = f"{where} {kustomize.ident(resource)}"
        try:
            kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{label}: schema ({K8S_VERSION}): {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            if (resource["apiVersion"], resource["kind"]) not in SCHEMALESS_ALLOWED:
                problems.append(
                    f"{label}: no schema for {resource['apiVersion']} {resource['kind']} in "
                    f"Kubernetes {K8S_VERSION} (a typo, a removed API, or a CRD to allow)"
                )
    return problems


# --------------------------------------------------------------------------- the image


@dataclass
class Images:
    """Our images: the Dockerfile stages behind them (the default target unless the
    image is named after a stage, as ``rcm-sweeps-worker`` for ``--target sweeps-worker``)."""

    dockerfile: Dockerfile

    def stage_for(self, image: str) -> Stage:
        name = kustomize.split_image(image)[0].rsplit("/", 1)[-1]
        for stage in self.dockerfile.stages:
            if (
                stage.name
                and stage is not self.dockerfile.last
                and (name == stage.name or name.endswith("-" + stage.name))
            ):
                return stage
        return self.dockerfile.last


def load_images() -> Images:
    dockerfiles = sorted((DEPLOY / "docker").glob("Dockerfile*"))
    dockerfiles = [d for d in dockerfiles if not d.name.endswith(".dockerignore")]
    if len(dockerfiles) != 1:
        raise AssertionError(f"expected one Dockerfile under deploy/docker, found {dockerfiles}")
    return Images(parse(dockerfiles[0]))


# --------------------------------------------------------------------------- the rendering


@dataclass
class Rendering:
    name: str
    directory: Path
    resources: list[Resource]
    images: Images
    external_secrets: dict[str, set[str]] = field(default_factory=dict)

    def of_kind(self, *kinds: str) -> list[Resource]:
        return [r for r in self.resources if r["kind"] in kinds]

    def find(self, kind: str, name: str, namespace: str | None) -> Resource | None:
        for resource in self.resources:
            meta = resource["metadata"]
            if (
                resource["kind"] == kind
                and meta["name"] == name
                and meta.get("namespace") == namespace
            ):
                return resource
        return None

    def data(self, kind: str, name: str, namespace: str | None) -> dict[str, str | None] | None:
        """A ConfigMap's or Secret's keys and values (a Secret's decoded); an external
        Secret's documented keys with unknown values; None when it does not exist."""
        resource = self.find(kind, name, namespace)
        if resource is None:
            if kind == "Secret" and name in self.external_secrets:
                return dict.fromkeys(self.external_secrets[name])
            return None
        values: dict[str, str | None] = {}
        for key, value in (resource.get("data") or {}).items():
            values[key] = base64.b64decode(value).decode() if kind == "Secret" else str(value)
        for key, value in (resource.get("stringData") or {}).items():
            values[key] = str(value)
        return values


def documented_external_secrets(directory: Path, resources: list[Resource]) -> dict[str, set[str]]:
    """Secrets referenced but not rendered: managed outside the repository. Their keys
    are the settings named in the comments of the overlay's kustomization.yaml, which
    must name the Secret."""
    text = kustomize.find_kustomization(directory).read_text()
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    settings = {name for p in PROCESSES.values() for name in settings_env_names(p.settings_class)}
    rendered = {r["metadata"]["name"] for r in resources if r["kind"] == "Secret"}
    external: dict[str, set[str]] = {}
    for name in sorted(_referenced_secrets(resources) - rendered):
        if re.search(rf"\b{re.escape(name)}\b", comments):
            external[name] = set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", comments)) & settings
    return external


def _referenced_secrets(resources: list[Resource]) -> set[str]:
    names = set()
    for resource in resources:
        for pod in _pod_specs(resource):
            for container in _containers(pod):
                for source in container.get("envFrom") or []:
                    if "secretRef" in source:
                        names.add(source["secretRef"]["name"])
                for variable in container.get("env") or []:
                    ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        names.add(ref["name"])
            for volume in pod.get("volumes") or []:
                if "secret" in volume:
                    names.add(volume["secret"]["secretName"])
    return names


def _pod_specs(resource: Resource) -> Iterator[dict[str, Any]]:
    for template in kustomize.pod_templates(resource):
        if isinstance(template.get("spec"), dict):
            yield template["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _pod_labels(resource: Resource) -> dict[str, str]:
    for template in kustomize.pod_templates(resource):
        return dict((template.get("metadata") or {}).get("labels") or {})
    return {}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if not selector:
        return False
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    if not isinstance(match, dict):
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values") or [],
        )
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# --------------------------------------------------------------------------- containers


@dataclass
class Container:
    rendering: Rendering
    workload: Resource
    pod: dict[str, Any]
    spec: dict[str, Any]
    init: bool
    stage: Stage | None
    invocation: Invocation | None
    env: dict[str, str | None] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.rendering.name} {kustomize.ident(self.workload)} container {self.spec.get('name')}"

    @property
    def namespace(self) -> str | None:
        return self.workload["metadata"].get("namespace")

    @property
    def full_env(self) -> dict[str, str | None]:
        """The image's settings, then the container's own variables."""
        image_env: dict[str, str | None] = {}
        if self.stage is not None and self.invocation is not None and self.invocation.process:
            known = self.invocation.process.known_env()
            image_env = {k: v for k, v in self.stage.effective_env().items() if k in known}
        return {**image_env, **self.env}

    def port_number(self, port: Any) -> int | None:
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        for declared in self.spec.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        return None


def _resolve_env(container: Container) -> None:
    rendering = container.rendering
    namespace = container.namespace
    for source in container.spec.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in source:
                continue
            ref = source[key]
            data = rendering.data(kind, ref["name"], namespace)
            if data is None:
                if not ref.get("optional"):
                    container.problems.append(
                        f"{container.where}: envFrom {kind} {ref['name']} does not exist"
                    )
                continue
            for name, value in data.items():
                container.env[prefix + name] = value
                container.origins[prefix + name] = f"{kind} {ref['name']}"
    for variable in container.spec.get("env") or []:
        name = variable["name"]
        if "value" in variable:
            container.env[name] = str(variable["value"])
            container.origins[name] = "env"
            continue
        value_from = variable.get("valueFrom") or {}
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key not in value_from:
                continue
            ref = value_from[key]
            data = rendering.data(kind, ref["name"], namespace)
            origin = f"{kind} {ref['name']} key {ref['key']}"
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    container.env[name] = None
                    container.origins[name] = origin + " (optional)"
                    continue
                what = (
                    f"the external Secret {ref['name']} is not documented to have key {ref['key']}"
                    if kind == "Secret" and ref["name"] in rendering.external_secrets
                    else f"{kind} {ref['name']} does not exist"
                    if data is None
                    else f"{kind} {ref['name']} has no key {ref['key']}"
                )
                container.problems.append(f"{container.where}: env {name}: {what}")
                continue
            container.env[name] = data[ref["key"]]
            container.origins[name] = origin
        if "fieldRef" in value_from or "resourceFieldRef" in value_from:
            container.env[name] = None
            container.origins[name] = "the downward API"
        if name not in container.env and name not in container.origins:
            container.env[name] = None
            container.origins[name] = "env"


def containers(rendering: Rendering) -> list[Container]:
    found = []
    scripts = console_scripts()
    ours_images = {
        kustomize.split_image(c.get("image", ""))[0]
        for r in rendering.of_kind(*WORKLOADS)
        for pod in _pod_specs(r)
        for c in _containers(pod)
        if c.get("command") and Path(str(c["command"][0])).name in scripts
    }
    for workload in rendering.of_kind(*WORKLOADS):
        for pod in _pod_specs(workload):
            init_names = {c.get("name") for c in pod.get("initContainers") or []}
            for spec in _containers(pod):
                image = kustomize.split_image(spec.get("image", ""))[0]
                command = spec.get("command")
                ours = image in ours_images or (command and Path(str(command[0])).name in scripts)
                stage = rendering.images.stage_for(spec.get("image", "")) if ours else None
                invocation = None
                if ours and stage is not None:
                    entrypoint = (
                        command if command is not None else stage.effective_entrypoint() or []
                    )
                    args = spec.get("args")
                    if args is None:
                        args = [] if command is not None else stage.effective_cmd() or []
                    invocation = resolve_command([*entrypoint, *args])
                container = Container(
                    rendering,
                    workload,
                    pod,
                    spec,
                    spec.get("name") in init_names,
                    stage,
                    invocation,
                )
                _resolve_env(container)
                found.append(container)
    return found


# --------------------------------------------------------------------------- checks


def _probe_problems(container: Container, peers: dict[str, Peer]) -> list[str]:
    problems: list[str] = []
    invocation = container.invocation
    spec = container.spec
    where = container.where
    process = invocation.process if invocation else None
    long_running = container.workload["kind"] in LONG_RUNNING and not container.init
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = spec.get(kind)
        if probe is None:
            if long_running and kind != "startupProbe":
                problems.append(f"{where}: no {kind}")
            continue
        if process is None:
            if "httpGet" in probe or "tcpSocket" in probe:
                port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                if container.port_number(port) is None:
                    problems.append(f"{where}: {kind} port {port!r} is not a declared port")
            continue
        env = container.full_env
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = container.port_number(get.get("port"))
            if port is None:
                problems.append(
                    f"{where}: {kind} port {get.get('port')!r} is not a declared containerPort name"
                )
                continue
            path = get.get("path", "/")
            problems += check_route(f"{where} {kind}", process, env, port, path, what=kind)
            if kind == "livenessProbe" and path in process.dependency_routes:
                problems.append(
                    f"{where}: livenessProbe uses {path}, which fails when the database or "
                    "Redis does: every replica would be restarted by a database blip"
                )
            if kind == "readinessProbe" and process.script == "gateway" and path != "/readyz":
                problems.append(
                    f"{where}: the gateway's readinessProbe must be its own /readyz, not {path}"
                )
        elif "tcpSocket" in probe:
            port = container.port_number(probe["tcpSocket"].get("port"))
            if port not in {b.port for b in bound_listeners(process, env)}:
                problems.append(
                    f"{where}: {kind} tcpSocket port {port} is not one {process.script} listens on"
                )
        elif "exec" in probe:
            assert container.stage is not None
            problems += check_healthcheck_command(
                f"{where} {kind}",
                process,
                env,
                list(probe["exec"].get("command") or []),
                available=programs(
                    container.rendering.images.dockerfile, container.stage, set(console_scripts())
                ),
            )
        else:
            problems.append(f"{where}: {kind} is neither httpGet, tcpSocket nor exec")
    return problems


def _prestop_seconds(spec: dict[str, Any]) -> float:
    command = (((spec.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get(
        "command"
    ) or []
    sleep = ((spec.get("lifecycle") or {}).get("preStop") or {}).get("sleep")
    if sleep:
        return float(sleep.get("seconds", 0))
    text = " ".join(str(c) for c in command)
    match = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", text)
    return float(match.group(1)) if match else 0.0


def _container_problems(container: Container, peers: dict[str, Peer]) -> list[str]:
    problems = list(container.problems)
    spec = container.spec
    where = container.where
    pod = container.pod
    workload = container.workload
    problems += check_secrets(
        where, {k: v for k, v in container.env.items() if container.origins.get(k) == "env"}
    )

    # Resources.
    resources = spec.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for key in ("cpu", "memory"):
        if key not in requests:
            problems.append(f"{where}: no resources.requests.{key}")
    if "memory" not in limits:
        problems.append(f"{where}: no resources.limits.memory")

    # Non-root.
    pod_security = pod.get("securityContext") or {}
    security = spec.get("securityContext") or {}
    non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    if non_root is not True:
        problems.append(f"{where}: runAsNonRoot is not true (pod or container securityContext)")
    if user == 0:
        problems.append(f"{where}: runAsUser 0")
    if security.get("privileged") or security.get("allowPrivilegeEscalation") is True:
        problems.append(f"{where}: privileged or allowPrivilegeEscalation")
    if non_root and user is None and container.stage is not None:
        image_user = (container.stage.effective_user() or "").split(":")[0]
        if not image_user.isdigit():
            problems.append(
                f"{where}: runAsNonRoot without runAsUser needs a numeric USER in the image "
                f"(it has {image_user or 'none'}): the kubelet refuses to start the pod"
            )

    # preStop hook program exists in our image.
    pre_stop = ((spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
    if pre_stop and container.stage is not None:
        program = str((pre_stop.get("command") or [""])[0]).rsplit("/", 1)[-1]
        available = programs(
            container.rendering.images.dockerfile, container.stage, set(console_scripts())
        )
        if program not in available:
            problems.append(f"{where}: preStop runs {program!r}, which the image does not have")

    invocation = container.invocation
    if invocation is None:
        problems += _probe_problems(container, peers)
        return problems
    if invocation.process is None or invocation.problem:
        problems.append(f"{where}: command {list(invocation.argv)}: {invocation.problem}")
        if invocation.process is None:
            return problems
    process = invocation.process
    if workload["kind"] in LONG_RUNNING and not container.init and not process.listeners:
        problems.append(
            f"{where}: {invocation.label} is a one-shot: as a {workload['kind']} it exits "
            "and is restarted forever (run it as a Job)"
        )
    env = container.full_env
    origins = {**{k: "the image's ENV" for k in env if k not in container.env}, **container.origins}
    problems += check_env(where, invocation, env, origins, own=set(container.env))
    problems += _service_link_problems(container, process)
    problems += _probe_problems(container, peers)
    listening = {bound.port: bound for bound in bound_listeners(process, env)}
    for declared in spec.get("ports") or []:
        if int(declared["containerPort"]) not in listening:
            problems.append(
                f"{where}: declares containerPort {declared['containerPort']}, but "
                f"{process.script} listens on {sorted(listening) or 'nothing'}"
            )
    namespace = container.namespace
    problems += check_references(where, process, env, peers, short_names=(namespace or "",))
    if workload["kind"] in LONG_RUNNING and not container.init:
        allowed = float(pod.get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE))
        grace = process.grace_seconds(env)
        pre_stop_seconds = _prestop_seconds(spec)
        if grace is not None and allowed < pre_stop_seconds + grace + GRACE_MARGIN_SECONDS:
            problems.append(
                f"{where}: terminationGracePeriodSeconds is {allowed:g} s, but the preStop hook "
                f"takes {pre_stop_seconds:g} s and {process.script} may take {grace:g} s after "
                f"SIGTERM: give at least {pre_stop_seconds + grace + GRACE_MARGIN_SECONDS:g} s"
            )
    return problems


def service_link_names(service: Resource) -> set[str]:
    """The variables the kubelet injects for a Service (``enableServiceLinks``, on by
    default) into every pod of its namespace, as docker links did."""
    prefix = re.sub(r"[^A-Z0-9]", "_", service["metadata"]["name"].upper())
    names = {f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT", f"{prefix}_PORT"}
    for port in (service.get("spec") or {}).get("ports") or []:
        protocol = port.get("protocol", "TCP")
        base = f"{prefix}_PORT_{port['port']}_{protocol}"
        names |= {base, f"{base}_PROTO", f"{base}_PORT", f"{base}_ADDR"}
        if port.get("name"):
            names.add(f"{prefix}_SERVICE_PORT_{re.sub(r'[^A-Z0-9]', '_', port['name'].upper())}")
    return names


def _service_link_problems(container: Container, process: Any) -> list[str]:
    if container.pod.get("enableServiceLinks", True) is False:
        return []
    problems = []
    known = process.known_env()
    for service in container.rendering.of_kind("Service"):
        if service["metadata"].get("namespace") != container.namespace:
            continue
        for name in sorted((service_link_names(service) & known) - set(container.env)):
            problems.append(
                f"{container.where}: the kubelet injects {name}=tcp://... for Service "
                f"{service['metadata']['name']}, which {process.script} reads as its setting "
                "(set enableServiceLinks: false, or set the variable explicitly)"
            )
    return problems


def _peers(rendering: Rendering, all_containers: list[Container]) -> dict[str, Peer]:
    """Services by name: the port each serves -> the listener behind it."""
    peers: dict[str, Peer] = {}
    for service in rendering.of_kind("Service"):
        selector = (service.get("spec") or {}).get("selector") or {}
        selected = [
            c
            for c in all_containers
            if not c.init
            and c.namespace == service["metadata"].get("namespace")
            and selector
            and all(_pod_labels(c.workload).get(k) == v for k, v in selector.items())
        ]
        ports: dict[int, Bound | None] = {}
        ours = False
        for entry in (service.get("spec") or {}).get("ports") or []:
            ports[int(entry["port"])] = None
            target = entry.get("targetPort", entry["port"])
            for container in selected:
                number = container.port_number(target)
                if container.invocation and container.invocation.process and number is not None:
                    ours = True
                    for bound in bound_listeners(container.invocation.process, container.full_env):
                        if bound.port == number:
                            ports[int(entry["port"])] = bound
        peers[service["metadata"]["name"]] = Peer(service["metadata"]["name"], ports, ours)
    return peers


def _object_problems(rendering: Rendering, all_containers: list[Container]) -> list[str]:
    problems: list[str] = []
    where = rendering.name
    workloads = rendering.of_kind(*LONG_RUNNING)

    def selected(namespace: str | None, selector: dict[str, Any] | None) -> list[Resource]:
        return [
            w
            for w in workloads
            if w["metadata"].get("namespace") == namespace and _selects(selector, _pod_labels(w))
        ]

    for service in rendering.of_kind("Service"):
        meta = service["metadata"]
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            continue
        targets = selected(meta.get("namespace"), {"matchLabels": spec["selector"]})
        label = f"{where} {kustomize.ident(service)}"
        if not targets:
            problems.append(f"{label}: selector {spec['selector']} matches no workload's pods")
            continue
        for entry in spec.get("ports") or []:
            target = entry.get("targetPort", entry["port"])
            for workload in targets:
                pod_containers = [
                    c for c in all_containers if c.workload is workload and not c.init
                ]
                if isinstance(target, str) and not target.isdigit():
                    if not any(c.port_number(target) is not None for c in pod_containers):
                        problems.append(
                            f"{label}: targetPort {target!r} is no container port name of "
                            f"{kustomize.ident(workload)}"
                        )
                else:
                    listening = {
                        b.port
                        for c in pod_containers
                        if c.invocation and c.invocation.process
                        for b in bound_listeners(c.invocation.process, c.full_env)
                    }
                    declared = {
                        int(p["containerPort"])
                        for c in pod_containers
                        for p in c.spec.get("ports") or []
                    }
                    if int(target) not in listening | declared:
                        problems.append(
                            f"{label}: targetPort {target} is not a port {kustomize.ident(workload)} listens on"
                        )
    for pdb in rendering.of_kind("PodDisruptionBudget"):
        meta = pdb["metadata"]
        spec = pdb.get("spec") or {}
        targets = selected(meta.get("namespace"), spec.get("selector"))
        label = f"{where} {kustomize.ident(pdb)}"
        if not targets:
            problems.append(f"{label}: selector matches no workload's pods")
            continue
        for workload in targets:
            replicas = _replicas(rendering, workload)
            minimum = spec.get("minAvailable")
            if isinstance(minimum, int) and minimum >= replicas:
                problems.append(
                    f"{label}: minAvailable {minimum} with {replicas} replica(s) of "
                    f"{kustomize.ident(workload)}: no pod can ever be evicted (node drains block)"
                )
            if spec.get("maxUnavailable") in (0, "0%"):
                problems.append(f"{label}: maxUnavailable 0 blocks every node drain")
    for hpa in rendering.of_kind("HorizontalPodAutoscaler"):
        meta = hpa["metadata"]
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target = rendering.find(ref.get("kind", ""), ref.get("name", ""), meta.get("namespace"))
        label = f"{where} {kustomize.ident(hpa)}"
        if target is None:
            problems.append(f"{label}: scaleTargetRef {ref} does not exist")
            continue
        if "replicas" in (target.get("spec") or {}):
            problems.append(
                f"{label}: {kustomize.ident(target)} also sets spec.replicas, which every "
                "kubectl apply resets under the autoscaler"
            )
        for metric in (hpa.get("spec") or {}).get("metrics") or []:
            resource = (metric.get("resource") or {}).get("name")
            if metric.get("type") == "Resource" and resource:
                for container in (c for c in all_containers if c.workload is target and not c.init):
                    if resource not in (
                        (container.spec.get("resources") or {}).get("requests") or {}
                    ):
                        problems.append(
                            f"{label}: scales on {resource} utilisation, but container "
                            f"{container.spec.get('name')} requests no {resource}"
                        )
    peers = _peers(rendering, all_containers)
    for ingress in rendering.of_kind("Ingress"):
        problems += _ingress_problems(rendering, ingress, peers, all_containers)
    for workload in rendering.of_kind(*WORKLOADS):
        meta = workload["metadata"]
        label = f"{where} {kustomize.ident(workload)}"
        for pod in _pod_specs(workload):
            account = pod.get("serviceAccountName")
            if (
                account
                and account != "default"
                and rendering.find("ServiceAccount", account, meta.get("namespace")) is None
            ):
                problems.append(f"{label}: serviceAccountName {account} does not exist")
            for volume in pod.get("volumes") or []:
                for kind, key, name_key in (
                    ("ConfigMap", "configMap", "name"),
                    ("Secret", "secret", "secretName"),
                ):
                    if key in volume and not volume[key].get("optional"):
                        name = volume[key][name_key]
                        if rendering.data(kind, name, meta.get("namespace")) is None:
                            problems.append(
                                f"{label}: volume {volume['name']}: {kind} {name} does not exist"
                            )
            for container in pod.get("containers") or []:
                mounts = {m["name"] for m in container.get("volumeMounts") or []}
                claims = {
                    (t.get("metadata") or {}).get("name")
                    for t in (workload.get("spec") or {}).get("volumeClaimTemplates") or []
                }
                missing = mounts - {v["name"] for v in pod.get("volumes") or []} - claims
                if missing:
                    problems.append(
                        f"{label}: container {container['name']} mounts undeclared volumes {sorted(missing)}"
                    )
    used = _used_configs(rendering)
    for kind in ("ConfigMap", "Secret"):
        for resource in rendering.of_kind(kind):
            if (kind, resource["metadata"]["name"]) not in used:
                problems.append(f"{where} {kustomize.ident(resource)}: used by no workload")
    namespaces = {
        r["metadata"].get("namespace")
        for r in rendering.resources
        if r["kind"] not in kustomize.CLUSTER_SCOPED
    }
    if len(namespaces) != 1 or None in namespaces:
        problems.append(
            f"{where}: objects are not all in one namespace: {sorted(map(str, namespaces))}"
        )
    return problems


def _ingress_problems(
    rendering: Rendering,
    ingress: Resource,
    peers: dict[str, Peer],
    all_containers: list[Container],
) -> list[str]:
    """Backends exist; a path sent to one of our processes is one it routes; nginx's
    body size and read timeout let the gateway's own limits apply."""
    problems: list[str] = []
    meta = ingress["metadata"]
    label = f"{rendering.name} {kustomize.ident(ingress)}"
    spec = ingress.get("spec") or {}
    paths: list[tuple[str, str, dict[str, Any]]] = []
    if spec.get("defaultBackend"):
        paths.append(("/", "Prefix", spec["defaultBackend"]))
    for rule in spec.get("rules") or []:
        for entry in (rule.get("http") or {}).get("paths") or []:
            paths.append(
                (entry.get("path", "/"), entry.get("pathType", "Prefix"), entry["backend"])
            )
    for path, path_type, backend in paths:
        service_ref = backend.get("service")
        if not service_ref:
            continue
        service = rendering.find("Service", service_ref["name"], meta.get("namespace"))
        if service is None:
            problems.append(f"{label}: backend Service {service_ref['name']} does not exist")
            continue
        port = service_ref.get("port") or {}
        entries = [
            p
            for p in (service.get("spec") or {}).get("ports") or []
            if p["port"] == port.get("number")
            or (p.get("name") and p.get("name") == port.get("name"))
        ]
        if not entries:
            problems.append(f"{label}: Service {service_ref['name']} has no port {port}")
            continue
        bound = peers[service_ref["name"]].ports.get(int(entries[0]["port"]))
        if bound is None or not bound.http:
            continue
        routed = (
            has_route(bound.process, bound.listener, path, method=None)
            if path_type == "Exact"
            else any(
                route.startswith(path.rstrip("/") + "/") or route == path
                for route in route_paths(bound.process, bound.listener)
            )
            or has_route(bound.process, bound.listener, path.rstrip("/") + "/x", method=None)
        )
        if not routed:
            problems.append(
                f"{label}: {path} goes to {bound.process.script}, which routes nothing there"
            )
        if bound.process.script == "gateway":
            envs = [
                c.full_env
                for c in all_containers
                if c.invocation and c.invocation.process is bound.process
            ]
            for env in envs[:1]:
                problems += _nginx_limits(label, meta.get("annotations") or {}, bound, env)
    return problems


def _nginx_limits(
    label: str, annotations: dict[str, str], bound: Bound, env: dict[str, str | None]
) -> list[str]:
    """nginx-ingress annotations, when present, leave the gateway's limits in charge."""
    problems = []
    size = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size")
    if size:
        match = re.fullmatch(r"(\d+)([kKmMgG]?)", size)
        if match:
            factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
            limit = int(match.group(1)) * factor
            gateway_max = int(effective(bound.process, env, "GATEWAY_MAX_BODY_BYTES"))
            if limit and limit < gateway_max:
                problems.append(
                    f"{label}: proxy-body-size {size} is below GATEWAY_MAX_BODY_BYTES "
                    f"({gateway_max}): nginx answers 413 before the gateway could"
                )
    timeout = annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout")
    if timeout and timeout.isdigit():
        slow = float(effective(bound.process, env, "GATEWAY_SLOW_TIMEOUT_SECONDS"))
        if int(timeout) < slow:
            problems.append(
                f"{label}: proxy-read-timeout {timeout} s is below GATEWAY_SLOW_TIMEOUT_SECONDS "
                f"({slow:g} s): nginx gives up on slow routes before the gateway does"
            )
    return problems


def _used_configs(rendering: Rendering) -> set[tuple[str, str]]:
    used: set[tuple[str, str]] = set()
    for resource in rendering.resources:
        for pod in _pod_specs(resource):
            for container in _containers(pod):
                for source in container.get("envFrom") or []:
                    if "configMapRef" in source:
                        used.add(("ConfigMap", source["configMapRef"]["name"]))
                    if "secretRef" in source:
                        used.add(("Secret", source["secretRef"]["name"]))
                for variable in container.get("env") or []:
                    value_from = variable.get("valueFrom") or {}
                    if "configMapKeyRef" in value_from:
                        used.add(("ConfigMap", value_from["configMapKeyRef"]["name"]))
                    if "secretKeyRef" in value_from:
                        used.add(("Secret", value_from["secretKeyRef"]["name"]))
            for volume in pod.get("volumes") or []:
                if "configMap" in volume:
                    used.add(("ConfigMap", volume["configMap"]["name"]))
                if "secret" in volume:
                    used.add(("Secret", volume["secret"]["secretName"]))
                for source in (volume.get("projected") or {}).get("sources") or []:
                    if "configMap" in source:
                        used.add(("ConfigMap", source["configMap"]["name"]))
                    if "secret" in source:
                        used.add(("Secret", source["secret"]["name"]))
            for secret in pod.get("imagePullSecrets") or []:
                used.add(("Secret", secret["name"]))
    return used


def _replicas(rendering: Rendering, workload: Resource) -> int:
    for hpa in rendering.of_kind("HorizontalPodAutoscaler"):
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == workload["kind"] and ref.get("name") == workload["metadata"]["name"]:
            return int((hpa.get("spec") or {}).get("minReplicas", 1))
    return int((workload.get("spec") or {}).get("replicas", 1))


def check_rendering(rendering: Rendering) -> list[str]:
    problems = schema_problems(rendering.resources, rendering.name)
    all_containers = containers(rendering)
    peers = _peers(rendering, all_containers)
    for container in all_containers:
        problems += _container_problems(container, peers)
    problems += _object_problems(rendering, all_containers)
    for secret in rendering.of_kind("Secret"):
        data = (
            rendering.data(
                "Secret", secret["metadata"]["name"], secret["metadata"].get("namespace")
            )
            or {}
        )
        problems += check_secrets(f"{rendering.name} {kustomize.ident(secret)}", data)
    for config_map in rendering.of_kind("ConfigMap"):
        data = (
            rendering.data(
                "ConfigMap", config_map["metadata"]["name"], config_map["metadata"].get("namespace")
            )
            or {}
        )
        problems += check_secrets(f"{rendering.name} {kustomize.ident(config_map)}", data)
    return problems


def load_rendering(
    directory: Path, name: str | None = None, images: Images | None = None
) -> Rendering:
    resources, _ = render(directory)
    rendering = Rendering(name or directory.name, directory, resources, images or load_images())
    rendering.external_secrets = documented_external_secrets(directory, resources)
    return rendering


def check_overlay(
    directory: Path, name: str | None = None, images: Images | None = None
) -> list[str]:
    try:
        rendering = load_rendering(directory, name, images)
    except kustomize.KustomizeError as error:
        return [f"{name or directory.name}: kustomize: {error}"]
    return check_rendering(rendering)


def workload(rendering: Rendering, kind: str, name: str) -> Resource | None:
    for resource in rendering.of_kind(kind):
        if resource["metadata"]["name"] == name:
            return resource
    return None


def processes_of(rendering: Rendering) -> dict[str, list[Container]]:
    """Containers by the console script they run."""
    result: dict[str, list[Container]] = {}
    for container in containers(rendering):
        if container.invocation and container.invocation.process:
            result.setdefault(container.invocation.process.script, []).append(container)
    return result
