"""The catalog the deployment checks rely on agrees with the code it describes."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import tomllib

import pytest
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tests.deploy.catalog import (
    PROCESSES,
    REPO,
    console_scripts,
    deploy_required,
    import_string,
    resolve_command,
    route_paths,
    settings_env_names,
    validation_problems,
    workspace_members,
)


def test_every_console_script_has_a_catalog_entry_and_imports() -> None:
    scripts = console_scripts()
    assert set(scripts) == set(PROCESSES), (
        "tests/deploy/catalog.py PROCESSES must list exactly the workspace's console scripts"
    )
    for target in scripts.values():
        assert callable(import_string(target)), target


def _settings_classes_loaded(module_path: str) -> set[str]:
    """Names passed as the first argument of ``load_settings(...)`` in a module."""
    module = importlib.import_module(module_path)
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "load_settings"
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            names.add(node.args[0].id)
    return names


@pytest.mark.parametrize("script", sorted(PROCESSES))
def test_the_settings_class_is_the_one_the_script_loads(script: str) -> None:
    process = PROCESSES[script]
    module_path = console_scripts()[script].split(":")[0]
    module = importlib.import_module(module_path)
    loaded = _settings_classes_loaded(module_path)
    assert len(loaded) == 1, f"{module_path} calls load_settings with {loaded}"
    assert getattr(module, loaded.pop()) is process.settings_class


@pytest.mark.parametrize("script", sorted(PROCESSES))
def test_listeners_are_the_settings_the_script_binds(script: str) -> None:
    process = PROCESSES[script]
    source = inspect.getsource(importlib.import_module(console_scripts()[script].split(":")[0]))
    names = process.env_names()
    for listener in process.listeners:
        for setting in (listener.host_setting, listener.port_setting):
            assert setting in names, f"{script}: {setting} is not a setting"
            assert f"settings.{setting}" in source, f"{script}'s module never uses {setting}"
        if listener.app is not None:
            assert route_paths(process, listener), f"{script} {listener.name}: no routes"


@pytest.mark.parametrize("script", sorted(PROCESSES))
def test_grace_unused_and_extra_settings_match_the_code(script: str) -> None:
    process = PROCESSES[script]
    if process.grace_setting:
        assert process.grace_setting in process.env_names()
    if process.grace_constant:
        assert float(import_string(process.grace_constant)) >= 0
    for variable, where in process.extra_env.items():
        files = list(REPO.glob(f"services/*/src/{where}")) + list(REPO.glob(f"gateway/src/{where}"))
        assert files, f"{where} does not exist"
        assert any(re.search(rf"environ[^\n]*{variable}", f.read_text()) for f in files), (
            f"{where} does not read {variable} from the environment"
        )
    if process.unused:
        package = console_scripts()[script].split(".")[0]
        sources = [p for m in workspace_members() for p in m.glob(f"src/{package}/**/*.py")]
        assert sources
        for variable in process.unused:
            assert not any(variable in p.read_text() for p in sources), (
                f"{package} reads {variable}: it is not unused"
            )
    for variable in process.deploy_required:
        assert variable in process.env_names()


@pytest.mark.parametrize("script", sorted(s for s, p in PROCESSES.items() if p.needs_packages))
def test_needed_packages_are_imported_and_not_declared_by_the_member(script: str) -> None:
    process = PROCESSES[script]
    module_path = console_scripts()[script].split(":")[0]
    source = inspect.getsource(importlib.import_module(module_path))
    declared = set()
    for member in workspace_members():
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        declared |= {
            re.split(r"[<>=\[; ]", dep)[0].lower() for dep in project.get("dependencies", [])
        }
    for package in process.needs_packages:
        assert re.search(rf"^\s*(from|import) {package}\b", source, re.MULTILINE)
        assert package not in declared, f"{package} is now a runtime dependency: drop it here"


def test_env_names_respect_prefixes_and_aliases() -> None:
    class Prefixed(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_", case_sensitive=False)
        port: int = 1
        token: str = Field(default="", validation_alias=AliasChoices("APP_TOKEN", "LEGACY_TOKEN"))
        name: str = Field(default="", alias="SERVICE_NAME")

    assert settings_env_names(Prefixed) == {
        "APP_PORT": "port",
        "APP_TOKEN": "token",
        "LEGACY_TOKEN": "token",
        "SERVICE_NAME": "name",
    }


def test_required_settings_are_what_a_container_must_set() -> None:
    assert set(deploy_required(PROCESSES["sweeps-worker"])) == {
        "DATABASE_URL",
        "REDIS_URL",
        "SWEEPS_WORKER_HOST",
    }
    gateway = deploy_required(PROCESSES["gateway"])
    assert {"GATEWAY_HOST", "SWEEPS_API_URL", "CONTRACTS_API_URL"} <= set(gateway)
    assert "DATABASE_URL" not in gateway
    assert set(deploy_required(PROCESSES["rcm"])) == {"DATABASE_URL", "REDIS_URL"}


def test_validation_is_the_process_own() -> None:
    api = PROCESSES["sweeps-api"]
    assert validation_problems(api, {"JWT_SECRET": None}) == []
    assert any("JWT_SECRET or JWT_JWKS_URL" in p for p in validation_problems(api, {}))
    assert any("32 characters" in p for p in validation_problems(api, {"JWT_SECRET": "short"}))
    worker = PROCESSES["sweeps-worker"]
    assert any(
        "SWEEP_CLAIM_TIMEOUT_SECONDS" in p
        for p in validation_problems(worker, {"SWEEP_CLAIM_TIMEOUT_SECONDS": "100"})
    )


@pytest.mark.parametrize(
    ("argv", "script", "problem"),
    [
        (["rcm", "migrate"], "rcm", None),
        (["rcm", "seed-demo", "--tenant", "demo"], "rcm", None),
        (["rcm", "tenants", "create", "demo", "--name", "Demo"], "rcm", None),
        (["rcm", "seed-demo"], "rcm", "Missing option '--tenant'"),
        (["rcm", "frob"], "rcm", "no command 'frob'"),
        (["/opt/venv/bin/sweeps-worker"], "sweeps-worker", None),
        (["tini", "--", "gateway"], "gateway", None),
        (["gateway", "--port", "8000"], "gateway", "takes no arguments"),
        (["sh", "-c", "rcm tenants list | grep -q demo || exec rcm migrate"], "rcm", None),
        (["sh", "-c", "rcm migrate && gateway"], None, "2 different console scripts"),
        (["python", "-m", "gateway.app"], None, "not a console script"),
        (["/usr/local/lib/gateway"], None, "not in a bin/ directory"),
    ],
)
def test_commands_resolve_to_console_scripts(
    argv: list[str], script: str | None, problem: str | None
) -> None:
    invocation = resolve_command(argv)
    assert (invocation.process.script if invocation.process else None) == script
    if problem is None:
        assert invocation.problem is None
    else:
        assert invocation.problem is not None
        assert problem in invocation.problem


def test_routes_come_from_the_real_apps() -> None:
    worker = PROCESSES["sweeps-worker"]
    assert set(route_paths(worker, worker.listeners[0])) == {"/healthz", "/metrics"}
    gateway = PROCESSES["gateway"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(route_paths(gateway, gateway.listeners[0]))
    api = PROCESSES["contracts-api"]
    assert {"/healthz", "/readyz"} <= set(route_paths(api, api.listeners[0]))
