"""``make run``: the whole system on one machine, under one process manager (honcho).

Finds PostgreSQL and Redis (``devinfra``), migrates, provisions and seeds the ``demo``
tenant, starts every process with prefixed logs, and prints the gateway URL, the docs
URL and a ready-to-paste curl. Settings already in the environment always win. Ctrl-C
stops every process, and the embedded servers when this run started them;
``make stop`` (``--stop``) cleans up after a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
from honcho.manager import Manager
from honcho.printer import Printer

from rcm_kit import devinfra, migrations, provision
from rcm_kit.auth import ALL_PERMISSIONS, ELIGIBILITY_INBOUND, issue_token
from rcm_kit.cli import seed_tenant
from rcm_kit.db import create_engine
from rcm_kit.plugins import load_plugins

DEMO_SLUG = "demo"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: str  # a console script of the virtualenv, or a module when ``module``
    module: bool = False

    @property
    def command_line(self) -> str:
        return f"{sys.executable} -m {self.command}" if self.module else str(BIN / self.command)


# Every long-running process of the product.
PROCESSES = (
    ProcessSpec("sweeps-api", "sweeps-api"),
    ProcessSpec("sweeps-supervisor", "sweeps-supervisor"),
    ProcessSpec("sweeps-worker", "sweeps-worker"),
    ProcessSpec("contracts-api", "contracts-api"),
    ProcessSpec("contracts-dispatcher", "contracts-dispatcher"),
    ProcessSpec("gateway", "gateway"),
    ProcessSpec("clearinghouse-sandbox", "clearinghouse-sandbox"),
)
# Started when SMTP_HOST is not set: every process then mails to it.
SMTP_SINK = ProcessSpec("smtp-sink", "rcm_kit.smtp_sink", module=True)
SINK_DEFAULTS = {
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "1025",
    "SMTP_TLS": "none",
    "SMTP_SINK_WEB_PORT": "8025",
}

DEFAULTS = {
    "LOG_FORMAT": "console",
    "GATEWAY_PORT": "8000",
    "SWEEPS_API_PORT": "8001",
    "CONTRACTS_API_PORT": "8002",
    "SANDBOX_PORT": "8090",
}


def _stored_secret(name: str, make: Callable[[], str]) -> str:
    """A development secret generated once and kept under .data/ (mode 600)."""
    stored = devinfra.data_dir() / name
    if not stored.exists():
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(make())
        stored.chmod(0o600)
    return stored.read_text().strip()


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _configure_mail() -> str | None:
    """A local SMTP sink unless SMTP_HOST is set; its inbox URL, or None for a relay."""
    if os.environ.get("SMTP_HOST"):
        print(
            f"Mail:       {os.environ['SMTP_HOST']}:{os.environ.get('SMTP_PORT', '1025')} (SMTP_HOST)"
        )
        return None
    for name, value in SINK_DEFAULTS.items():
        os.environ[name] = os.environ.get(name) or value
    directory = os.environ.get("SMTP_SINK_DIR") or str(devinfra.data_dir() / "mail")
    web_port = os.environ["SMTP_SINK_WEB_PORT"]
    inbox = f"http://127.0.0.1:{web_port}/" if web_port != "0" else directory
    print(f"Mail:       local sink on 127.0.0.1:{os.environ['SMTP_PORT']}, kept in {directory}")
    return inbox


async def _prepare() -> tuple[devinfra.Infra, str]:
    infra = await devinfra.resolve_infra(start_embedded=True)
    os.environ.setdefault("DATABASE_URL", infra.database_url)
    os.environ.setdefault("REDIS_URL", infra.redis_url)
    if not os.environ.get("JWT_SECRET"):
        os.environ["JWT_SECRET"] = _stored_secret("jwt-secret", lambda: secrets.token_urlsafe(48))
    if not os.environ.get("SECRETS_KEY"):
        os.environ["SECRETS_KEY"] = _stored_secret("secrets-key", _fernet_key)
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    sandbox = f"http://127.0.0.1:{os.environ['SANDBOX_PORT']}"
    # The demo tenant's trading partner (seeded) points here.
    os.environ.setdefault("CLEARINGHOUSE_SANDBOX_URL", sandbox)
    print(f"PostgreSQL: {devinfra.mask_url(os.environ['DATABASE_URL'])} ({infra.postgres_source})")
    print(f"Redis:      {devinfra.mask_url(os.environ['REDIS_URL'])} ({infra.redis_source})")
    from rcm_kit.settings import normalise_database_url

    master_url = normalise_database_url(os.environ["DATABASE_URL"])
    directory = migrations.find_migrations_dir()
    plugins = load_plugins()
    master = create_engine(master_url, pool_size=2, app_name="make-run")
    try:
        report = await provision.migrate_all(master, plugins, directory)
        if not report.ok:
            for slug, error in report.failures.items():
                print(f"migration of tenant {slug} failed: {error}", file=sys.stderr)
        tenant = await provision.create_tenant(
            master, plugins, directory, slug=DEMO_SLUG, name="Demo Health System"
        )
        print("Seeding the demo tenant…")
        for line in await seed_tenant(tenant):
            print(f"  {line}")
    finally:
        await master.dispose()
    token = _token(tenant.tenant_id, list(ALL_PERMISSIONS), "demo-user")
    # Delayed 271s (sandbox member SBX-DELAYED) come back through the gateway's inbound
    # endpoint with a token that may only deliver them.
    gateway = f"http://127.0.0.1:{os.environ['GATEWAY_PORT']}"
    os.environ.setdefault("SANDBOX_INBOUND_URL", f"{gateway}/api/v1/eligibility/inbound")
    os.environ.setdefault(
        "SANDBOX_INBOUND_CREDENTIAL",
        _token(tenant.tenant_id, [ELIGIBILITY_INBOUND], "clearinghouse-sandbox"),
    )
    return infra, token


def _token(tenant_id: UUID, perms: list[str], subject: str) -> str:
    return issue_token(
        os.environ["JWT_SECRET"],
        tenant_id=tenant_id,
        perms=perms,
        subject=subject,
        ttl_seconds=86_400,
        issuer=os.environ.get("JWT_ISSUER") or None,
        audience=os.environ.get("JWT_AUDIENCE") or None,
    )


def announce(base_url: str, token: str, timeout: float = 60.0) -> int:
    """Wait until the gateway says every service is ready, print how to try it, then idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        print(f"the gateway at {base_url} did not become ready within {timeout:.0f} s")
        return 1
    inbox = os.environ.get("RCM_MAIL_INBOX")
    mail = f"  Mail:     {inbox} (the demo's expiry-alert mails)\n\n" if inbox else ""
    print(
        "\n"
        f"  Gateway:  {base_url}/api/v1\n"
        f"  Docs:     {base_url}/api/v1/docs\n"
        f"  Token:    {token}\n\n"
        f"  Try:      curl -s -H 'Authorization: Bearer {token}' {base_url}/api/v1/payers\n\n"
        f"{mail}"
        f"  Sandbox:  http://127.0.0.1:{os.environ.get('SANDBOX_PORT', '8090')}/sandbox/requests"
        " (the 270s it received; members named Sandbox <Answer> pick its answers)\n\n"
        "  More tokens: uv run rcm token --tenant demo --perms eligibility.read,config.read\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    signal.sigwait(signals)
    return 0


def _our_processes() -> list[int]:
    """Pids of processes started from this checkout's virtualenv by a previous run."""
    names = {spec.command for spec in (*PROCESSES, SMTP_SINK)} | {"rcm_kit.devrun"}
    marker = str(BIN)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [part.decode(errors="replace") for part in argv if part]
        if any(marker in part for part in text) and any(
            part.endswith(tuple(names)) for part in text
        ):
            found.append(int(entry.name))
    return found


def stop() -> None:
    for pid in _our_processes():
        try:
            os.kill(pid, signal.SIGTERM)
            print(f"stopped process {pid}")
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rcm_kit.devrun")
    parser.add_argument("--stop", action="store_true", help="stop processes left by a crash")
    parser.add_argument("--announce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stop:
        stop()
        return 0
    base_url = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', DEFAULTS['GATEWAY_PORT'])}"
    if args.announce:
        return announce(base_url, os.environ["RCM_DEMO_TOKEN"])

    infra, token = asyncio.run(_prepare())
    inbox = _configure_mail()
    manager = Manager(Printer(sys.stdout))
    env = dict(os.environ)
    for spec in (*PROCESSES, SMTP_SINK) if inbox is not None else PROCESSES:
        manager.add_process(spec.name, spec.command_line, env=env)
    # The token travels in the environment, never on a command line that `ps` shows.
    announcer_env = {**env, "RCM_DEMO_TOKEN": token, "RCM_MAIL_INBOX": inbox or ""}
    manager.add_process(
        "ready", f"{sys.executable} -m rcm_kit.devrun --announce", env=announcer_env
    )
    try:
        manager.loop()
    finally:
        if "embedded" in (infra.postgres_source, infra.redis_source):
            for line in devinfra.stop_embedded():
                print(f"stopped {line}")
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
