"""``rcm``: the admin command line (migrations, tenants, tokens, imports, demo data).

It finds PostgreSQL and Redis exactly as ``make run`` does: the environment, else
localhost, else the embedded servers under ``.data/`` when they run.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rcm_kit import migrations, provision
from rcm_kit.auth import ALL_PERMISSIONS, issue_token
from rcm_kit.clock import SystemClock, today_in
from rcm_kit.db import create_engine
from rcm_kit.importing import ImportRejected, run_import
from rcm_kit.logging import configure_logging
from rcm_kit.plugins import SeedContext, import_kinds, load_plugins
from rcm_kit.settings import CommonSettings, load_settings
from rcm_kit.tenancy import Tenant, TenantDirectory, TenantStatus

T = TypeVar("T")

app = typer.Typer(help="Admin command line of the RCM back end.", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Create, list, suspend and re-activate tenants.", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")


class CliSettings(CommonSettings):
    RCM_MIGRATIONS_DIR: Path | None = None


def _discover_infra() -> None:
    """Fill DATABASE_URL/REDIS_URL the way ``make run`` finds them, unless already set."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    from rcm_kit.devinfra import InfraUnavailable, resolve_infra

    try:
        infra = asyncio.run(resolve_infra(start_embedded=False))
    except InfraUnavailable as error:
        typer.echo(f"rcm: {error}", err=True)
        raise typer.Exit(1) from None
    os.environ.setdefault("DATABASE_URL", infra.database_url)
    os.environ.setdefault("REDIS_URL", infra.redis_url)


def _settings() -> CliSettings:
    _discover_infra()
    settings = load_settings(CliSettings, "rcm")
    configure_logging(
        settings.LOG_LEVEL if settings.LOG_LEVEL != "INFO" else "WARNING", "console", "rcm"
    )
    return settings


def _migrations_dir(settings: CliSettings) -> Path:
    return settings.RCM_MIGRATIONS_DIR or migrations.find_migrations_dir()


def _run(work: Callable[[CliSettings], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()
    try:
        return asyncio.run(work(settings))
    except provision.ProvisioningError as error:
        typer.echo(f"rcm: {error}", err=True)
        raise typer.Exit(1) from None


async def _with_master(settings: CliSettings, work: Callable[[Any], Awaitable[T]]) -> T:
    master = create_engine(settings.DATABASE_URL, pool_size=2, app_name="rcm-cli")
    try:
        return await work(master)
    finally:
        await master.dispose()


async def _tenant(master: Any, slug: str) -> Tenant:
    tenant = await provision.tenant_by_slug(master, slug)
    if tenant is None:
        raise provision.ProvisioningError(f"no tenant with slug {slug!r} (see `rcm tenants list`)")
    return tenant


@app.command()
def migrate() -> None:
    """Upgrade the master database and every tenant (active or suspended) to head."""

    async def work(settings: CliSettings) -> provision.MigrationReport:
        return await _with_master(
            settings,
            lambda master: provision.migrate_all(master, load_plugins(), _migrations_dir(settings)),
        )

    report = _run(work)
    typer.echo(f"master: {_revisions(report.master)}")
    for slug, revisions in report.tenants.items():
        typer.echo(f"{slug}: {_revisions(revisions)}")
    for slug, error in report.failures.items():
        typer.echo(f"{slug}: FAILED {error}", err=True)
    if not report.ok:
        typer.echo(f"rcm migrate: {len(report.failures)} tenant(s) failed", err=True)
        raise typer.Exit(1)


def _revisions(revisions: dict[str, Any]) -> str:
    return " ".join(f"{tree}={rev}" for tree, rev in revisions.items()) or "(no trees)"


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: Annotated[str, typer.Option(help="Display name")],
    timezone: Annotated[str, typer.Option(help="IANA time zone of the tenant's 'today'")] = "UTC",
) -> None:
    """Create the tenant's database, migrate it and register it; prints the tenant id."""

    async def work(settings: CliSettings) -> Tenant:
        directory = _migrations_dir(settings)

        async def create(master: Any) -> Tenant:
            await provision.migrate_master(settings.DATABASE_URL, directory)
            return await provision.create_tenant(
                master, load_plugins(), directory, slug=slug, name=name, timezone=timezone
            )

        return await _with_master(settings, create)

    typer.echo(str(_run(work).tenant_id))


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants: id, slug, status, time zone, name."""

    async def work(settings: CliSettings) -> list[Tenant]:
        async def listing(master: Any) -> list[Tenant]:
            from rcm_kit.db import TenantConnectionResolver

            return await TenantDirectory(master, TenantConnectionResolver()).list()

        return await _with_master(settings, listing)

    for tenant in _run(work):
        typer.echo(
            f"{tenant.tenant_id}  {tenant.slug:<20} {tenant.status:<10} {tenant.timezone:<20} {tenant.name}"
        )


@tenants_app.command("suspend")
def tenants_suspend(slug: str) -> None:
    """Suspend a tenant: its tokens are refused with 403 within 10 seconds."""

    async def work(settings: CliSettings) -> Tenant:
        return await _with_master(
            settings, lambda master: provision.set_status(master, slug, TenantStatus.SUSPENDED)
        )

    tenant = _run(work)
    typer.echo(f"{tenant.slug}: {tenant.status}")


@tenants_app.command("activate")
def tenants_activate(slug: str) -> None:
    """Migrate a tenant's database to head, then re-activate it."""

    async def work(settings: CliSettings) -> Tenant:
        directory = _migrations_dir(settings)

        async def activate(master: Any) -> Tenant:
            tenant = await _tenant(master, slug)
            trees = migrations.tenant_trees(load_plugins(), directory)
            await provision.ensure_database(
                provision.maintenance_url(tenant.database_url), tenant.database_name
            )
            await migrations.upgrade_tenant(tenant.database_url, trees)
            return await provision.set_status(master, slug, TenantStatus.ACTIVE)

        return await _with_master(settings, activate)

    tenant = _run(work)
    typer.echo(f"{tenant.slug}: {tenant.status}")


def _jwt_secret(settings: CliSettings) -> str:
    if settings.JWT_SECRET:
        return settings.JWT_SECRET
    from rcm_kit.devinfra import data_dir

    stored = data_dir() / "jwt-secret"
    if stored.exists():
        return stored.read_text().strip()
    typer.echo("rcm token: set JWT_SECRET (the secret the services verify with)", err=True)
    raise typer.Exit(1)


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    perms: Annotated[str, typer.Option(help="Comma-separated permissions")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 86_400,
    sub: Annotated[str, typer.Option(help="Subject (who the token stands for)")] = "rcm-cli",
) -> None:
    """Print a JWT (one line) signed with JWT_SECRET."""
    wanted = [p.strip() for p in perms.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(ALL_PERMISSIONS))
    if unknown:
        typer.echo(
            f"rcm token: unknown permission(s) {', '.join(unknown)}; "
            f"known: {', '.join(ALL_PERMISSIONS)}",
            err=True,
        )
        raise typer.Exit(1)
    if ttl <= 0:
        typer.echo("rcm token: --ttl must be positive", err=True)
        raise typer.Exit(1)

    async def work(settings: CliSettings) -> str:
        found = await _with_master(settings, lambda master: _tenant(master, tenant))
        return issue_token(
            _jwt_secret(settings),
            tenant_id=found.tenant_id,
            perms=wanted,
            subject=sub,
            ttl_seconds=ttl,
            issuer=settings.JWT_ISSUER,
            audience=settings.JWT_AUDIENCE,
        )

    typer.echo(_run(work))


@app.command("seed-demo")
def seed_demo(tenant: Annotated[str, typer.Option(help="Tenant slug")]) -> None:
    """Fill a tenant with realistic demo data (deterministic and idempotent)."""

    async def work(settings: CliSettings) -> list[str]:
        async def seed(master: Any) -> list[str]:
            found = await _tenant(master, tenant)
            return await seed_tenant(found)

        return await _with_master(settings, seed)

    for line in _run(work):
        typer.echo(line)


async def seed_tenant(tenant: Tenant) -> list[str]:
    """Run every plugin's seed, reference first, each in its own transaction."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    engine = create_engine(tenant.database_url, pool_size=2, app_name="rcm-seed")
    lines = []
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        for plugin in load_plugins():
            if plugin.seed is None:
                continue
            async with sessions() as session, session.begin():
                today = today_in(SystemClock(), tenant.timezone)
                result = await plugin.seed(SeedContext(session, today, tenant.slug))
            lines.append(f"{plugin.name}: {result}")
    finally:
        await engine.dispose()
    return lines


@app.command("import")
def import_file(
    kind: Annotated[str, typer.Argument(help="What the file holds (see the README's table)")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
) -> None:
    """Import a CSV (header row) or NDJSON file; all or nothing, upserting by natural key."""
    kinds = import_kinds(load_plugins())
    if kind not in kinds:
        typer.echo(
            f"rcm import: unknown kind {kind!r}; known: {', '.join(sorted(kinds))}", err=True
        )
        raise typer.Exit(2)

    async def work(settings: CliSettings) -> str:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        found = await _with_master(settings, lambda master: _tenant(master, tenant))
        engine = create_engine(found.database_url, pool_size=1, app_name="rcm-import")
        try:
            async with async_sessionmaker(engine)() as session, session.begin():
                stats = await run_import(session, kinds[kind], file)
        finally:
            await engine.dispose()
        return f"{kind}: {stats.inserted} inserted, {stats.updated} updated, {stats.unchanged} unchanged"

    try:
        typer.echo(_run(work))
    except ImportRejected as rejected:
        for line, reason in rejected.errors:
            typer.echo(f"{file}:{line}: {reason}", err=True)
        typer.echo(f"rcm import: {file} rejected, nothing written", err=True)
        raise typer.Exit(1) from None


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    # Raised where the command is: the transaction in progress (a migration tree, an
    # import) rolls back as its connection closes. Exit status 128 + 15, as a kill.
    raise SystemExit(128 + signum)


def main() -> None:
    # Python's default for SIGTERM is to die, but as PID 1 of a container (a Kubernetes
    # Job's `rcm migrate`) a signal without a handler is ignored, and the pod would wait
    # out its whole grace period before SIGKILL.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    app(prog_name="rcm")


if __name__ == "__main__":
    main()
