"""What the dispatcher and delivery tests share: a real SMTP server that keeps what it
receives (and can be told to refuse), a private master database with its own tenants
(so a tick sees only the test's tenants), a dispatcher on its own engines, and small
factories writing straight to a tenant's tables."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contract_registry.config import DispatcherSettings
from contract_registry.dispatcher import Dispatcher
from contract_registry.models import (
    contract_expiry_alert,
    contract_expiry_alert_delivery,
    payer_contract,
)
from rcm_kit import provision
from rcm_kit.clock import FixedClock
from rcm_kit.db import TenantConnectionResolver, create_engine, database_url_for
from rcm_kit.mail import MailSender
from rcm_kit.plugins import Plugin
from rcm_kit.tenancy import Tenant, TenantDirectory
from rcm_reference.models import billing_entity, payer
from tests.conftest import free_port, service_env, tenant_session

# A Tuesday, mid-afternoon UTC: far from midnight in UTC and in New York.
NOON = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


class MailCatcher:
    """aiosmtpd on a real port, keeping every mail it accepts.

    ``data_reply`` (e.g. ``"451 4.3.0 Try again later"``) refuses DATA with that reply;
    ``refuse`` holds recipients refused at RCPT with a 550; ``data_delay`` slows DATA.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: list[Any] = []  # the client end of each mail's connection
        self.data_reply: str | None = None
        self.refuse: set[str] = set()
        self.data_delay = 0.0  # seconds DATA takes (a slow relay)
        self.data_started = threading.Event()
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started.set()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply is not None:
            return self.data_reply
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.peers.append(session.peer)
        return "250 2.0.0 Ok: queued"

    def for_alert(self, alert_id: UUID) -> list[EmailMessage]:
        return [m for m in self.messages if m["X-RCM-Alert-Id"] == str(alert_id)]


@dataclass
class World:
    """A private master database: the tenants a test's dispatchers tick over."""

    server_url: str
    redis_url: str
    plugins: list[Plugin]
    migrations_dir: Path
    name: str = field(default_factory=lambda: f"rcmt_{secrets.token_hex(4)}_d")
    master: AsyncEngine | None = None
    _dispatchers: list[Dispatcher] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return database_url_for(self.server_url, self.name)

    async def open(self) -> World:
        await provision.migrate_master(self.master_url, self.migrations_dir)
        self.master = create_engine(self.master_url, pool_size=2, app_name="tests")
        return self

    async def close(self) -> None:
        for dispatcher in self._dispatchers:
            await dispatcher.sender.close()
            await dispatcher.directory.dispose()
        if self.master is not None:
            await self.master.dispose()
        await provision.drop_databases(self.server_url, self.name)

    async def tenant(self, slug: str | None = None, *, timezone: str = "UTC") -> Tenant:
        assert self.master is not None
        slug = slug or f"t-{secrets.token_hex(3)}"
        return await provision.create_tenant(
            self.master, self.plugins, self.migrations_dir, slug=slug, name=slug, timezone=timezone
        )

    def settings(self, smtp_port: int, **overrides: Any) -> DispatcherSettings:
        values = {
            **service_env(self.master_url, self.redis_url),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp_port,
            "SMTP_TIMEOUT_SECONDS": 5,
            **overrides,
        }
        return DispatcherSettings(**values)

    def dispatcher(
        self, smtp_port: int, clock: FixedClock, *, redis: Any = None, **overrides: Any
    ) -> Dispatcher:
        """A dispatcher with its own master engine, resolver and mail sender, as a
        separate replica would have."""
        settings = self.settings(smtp_port, **overrides)
        directory = TenantDirectory(
            create_engine(self.master_url, pool_size=2, app_name="tests-dispatcher"),
            TenantConnectionResolver(pool_size=4, max_engines=10, app_name="tests-dispatcher"),
            cache_seconds=0,
        )
        dispatcher = Dispatcher(
            directory=directory,
            sender=MailSender(settings, max_connections=settings.CONTRACT_EXPIRY_SEND_CONCURRENCY),
            settings=settings,
            clock=clock,
            redis=redis,
        )
        self._dispatchers.append(dispatcher)
        return dispatcher


@asynccontextmanager
async def open_world(
    server_url: str, redis_url: str, plugins: list[Plugin], migrations_dir: Path
) -> AsyncIterator[World]:
    world = await World(server_url, redis_url, plugins, migrations_dir).open()
    try:
        yield world
    finally:
        await world.close()


# ---------------------------------------------------------------- factories


async def _insert(session: AsyncSession, table: sa.Table, values: dict[str, Any]) -> UUID:
    id_column = table.primary_key.columns.values()[0]
    return (
        await session.execute(sa.insert(table).values(values).returning(id_column))
    ).scalar_one()


@dataclass(frozen=True)
class Scope:
    payer_id: UUID
    billing_entity_id: UUID


async def add_scope(
    tenant: Tenant, *, payer_name: str = "Aetna", entity_name: str = "Main Street Clinic"
) -> Scope:
    code = secrets.token_hex(3)
    async with tenant_session(tenant) as session:
        payer_id = await _insert(session, payer, {"payer_code": f"P{code}", "name": payer_name})
        entity_id = await _insert(
            session, billing_entity, {"billing_entity_code": f"B{code}", "name": entity_name}
        )
    return Scope(payer_id, entity_id)


async def add_contract(
    tenant: Tenant,
    scope: Scope,
    effective_to: date | None,
    *,
    name: str = "Commercial PPO 2026",
    number: str | None = None,
    status: str = "ACTIVE",
) -> UUID:
    async with tenant_session(tenant) as session:
        return await _insert(
            session,
            payer_contract,
            {
                "payer_id": scope.payer_id,
                "billing_entity_id": scope.billing_entity_id,
                "name": name,
                "contract_number": number or f"C-{secrets.token_hex(3)}",
                "status": status,
                "effective_from": date(2024, 1, 1),
                "effective_to": effective_to,
            },
        )


async def set_contract_end(tenant: Tenant, contract_id: UUID, effective_to: date) -> None:
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.update(payer_contract)
            .where(payer_contract.c.contract_id == contract_id)
            .values(effective_to=effective_to)
        )


async def add_alert(
    tenant: Tenant,
    *,
    lead_days: int = 30,
    recipients: list[str] | None = None,
    subject: str = "Contracts expiring within 30 days",
    payer_id: UUID | None = None,
    billing_entity_id: UUID | None = None,
    active: bool = True,
) -> UUID:
    async with tenant_session(tenant) as session:
        return await _insert(
            session,
            contract_expiry_alert,
            {
                "payer_id": payer_id,
                "billing_entity_id": billing_entity_id,
                "lead_days": lead_days,
                "recipients": recipients or ["contracts@clinic.example"],
                "subject": subject,
                "active": active,
            },
        )


async def alert_state(tenant: Tenant, alert_id: UUID) -> Any:
    async with tenant_session(tenant) as session:
        return (
            await session.execute(
                sa.select(contract_expiry_alert).where(contract_expiry_alert.c.alert_id == alert_id)
            )
        ).one()


async def deliveries(tenant: Tenant, alert_id: UUID) -> list[Any]:
    """The alert's delivery rows, oldest first."""
    d = contract_expiry_alert_delivery
    async with tenant_session(tenant) as session:
        return list(
            (
                await session.execute(
                    sa.select(d)
                    .where(d.c.alert_id == alert_id)
                    .order_by(d.c.attempted_at, d.c.created_at)
                )
            ).all()
        )


async def one_due_alert(world: World) -> tuple[Tenant, UUID]:
    """A new tenant whose one alert (all payers, 30 days) matches a contract ending in 3 days."""
    tenant = await world.tenant()
    scope = await add_scope(tenant)
    await add_contract(tenant, scope, NOON.date() + timedelta(days=3))
    return tenant, await add_alert(tenant)
