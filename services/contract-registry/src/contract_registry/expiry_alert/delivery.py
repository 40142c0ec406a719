"""Expiry-alert deliveries: the dispatcher's steps for a tenant's due alerts, and "Send test".

A scheduled alert goes out at most once per tenant calendar day, whatever the number of
dispatcher replicas, because of one database rule: before any mail leaves, the sender
inserts a SENDING row for (alert, day) and commits it, and the partial unique index
``uq_alert_delivery_claim`` lets only one such row exist while it is sending or sent. A
replica that loses the insert skips the alert. After the send, a second transaction
turns the row into SUCCESS (and stamps ``last_fired_at``) or FAILED (with the relay's
words and a retry time). A FAILED row frees the day again, but the alert is not due
before its retry time: 1, 2, 4 ... minutes after each failure of the day, capped.

A claim still SENDING after the claim timeout belongs to a dispatcher that stopped
mid-send: it becomes FAILED "outcome unknown" with no retry time, so the alert is not
mailed again automatically that day (the mail may have left; a second one would be a
duplicate). The operator's "Send test" remains, and the next day mails as usual.

No match: ``last_status = NO_CONTRACTS``, no mail, ``last_fired_at`` untouched, one
NO_CONTRACTS row a day at most (its own partial unique index), and the alert stays due,
so a contract entering the window later that day is mailed that day.

Logs carry our ids only: never an address, a contract or a subject.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import Message
from enum import StrEnum
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.contract.repository import ExpiringContract, expiring_contracts
from contract_registry.expiry_alert import delivery_repository as repo
from contract_registry.expiry_alert.delivery_repository import AlertRow
from contract_registry.models import AlertStatus, DeliveryKind, DeliveryStatus, audit_event
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import Principal
from rcm_kit.errors import NotFound
from rcm_kit.logging import get_logger
from rcm_kit.mail import MailSender, SendError, SendResult, SmtpSettings, compose
from rcm_kit.tenancy import Tenant

log = get_logger(__name__)

OUTCOME_UNKNOWN = (
    "Outcome unknown: the dispatcher stopped while sending; the mail may or may not have "
    "left. Not resent automatically today; use Send test to send it now."
)
# A mail lists this many contracts at most; the count and the link cover the rest.
MAIL_ROWS = 500

DELIVERIES = Counter(
    "contract_expiry_deliveries_total",
    "Expiry-alert delivery attempts by kind and outcome",
    ["kind", "status"],
)


class AlertNotFound(NotFound):
    def __init__(self, alert_id: UUID) -> None:
        super().__init__(f"No expiry alert {alert_id} in this tenant.", alert_id=str(alert_id))


class Outcome(StrEnum):
    """What the dispatcher did with one due alert in one tick."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    NO_CONTRACTS = "NO_CONTRACTS"
    SKIPPED = "SKIPPED"  # another replica holds or used the day, or the alert stopped being due
    STOPPING = "STOPPING"  # the process is shutting down: not claimed, left for the next run


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: int = 60
    max_seconds: int = 3600

    def delay(self, earlier_failures: int) -> timedelta:
        """The wait after a failure, given how many failed earlier that day."""
        seconds = self.base_seconds * 2 ** min(earlier_failures, 30)
        return timedelta(seconds=min(seconds, self.max_seconds))


@dataclass(frozen=True)
class SendTestOutcome:
    status: DeliveryStatus
    matched_contracts: int
    error: str | None
    delivery_id: UUID


def local_day(tenant: Tenant, now: datetime) -> date:
    """The tenant's calendar day at ``now``: the unit of "once a day"."""
    return now.astimezone(ZoneInfo(tenant.timezone)).date()


def message_id(
    smtp: SmtpSettings, tenant: Tenant, alert_id: UUID, day: date, test_id: UUID | None = None
) -> str:
    """The same for every attempt at one alert's scheduled mail of one day, so a resend
    after an ambiguous failure is recognisably the same mail (clients thread or drop
    duplicates by it); a test send's comes from its own delivery id. A digest of the ids
    keeps it short enough for one header line; the delivery history stores it."""
    if test_id is None:
        seed = f"{tenant.tenant_id}:{alert_id}:{day.isoformat()}"
        prefix = f"expiry-alert.{day:%Y%m%d}"
    else:
        seed = f"{tenant.tenant_id}:{alert_id}:test:{test_id}"
        prefix = "expiry-alert-test"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    return f"<{prefix}.{digest}@{smtp.from_domain}>"


# ---------------------------------------------------------------- the message


@dataclass(frozen=True)
class MailContent:
    text: str
    html: str


_COLUMNS = ("Payer", "Billing entity", "Contract", "Number", "Effective to", "Days left")


def _cells(row: ExpiringContract) -> tuple[str, ...]:
    return (
        row.payer_name,
        row.billing_entity_name,
        row.name,
        row.contract_number,
        row.effective_to.isoformat(),
        str(row.days_left),
    )


def render(
    *,
    alert: AlertRow,
    contracts: Sequence[ExpiringContract],
    today: date,
    timezone: str,
    scope: tuple[str | None, str | None],
    test: bool,
) -> MailContent:
    """Plain text and HTML of an alert mail (every value escaped in the HTML)."""
    count = len(contracts)
    until = today + timedelta(days=alert.lead_days)
    payer_name, entity_name = scope
    scope_text = (
        f"{payer_name or ('all payers' if alert.payer_id is None else 'one payer')}, "
        f"{entity_name or ('all billing entities' if alert.billing_entity_id is None else 'one billing entity')}"
    )
    window = f"within {alert.lead_days} days (by {until.isoformat()}; today is {today.isoformat()}, {timezone})"
    if count:
        noun = "contract expires" if count == 1 else "contracts expire"
        lead = f"{count} active {noun} {window}."
    else:
        lead = (
            f"No active contract in this alert's scope expires {window}. "
            "The scheduled alert sends nothing on such a day."
        )
    intro = []
    if test:
        intro.append("This is a test of an expiry alert, sent at an operator's request.")
    intro += [lead, f"Scope: {scope_text}."]
    shown = list(contracts[:MAIL_ROWS])
    more = count - len(shown)
    footer = (
        "Review and edit them in the contract registry: Admin > Contracts, "
        f'"Expiring within {alert.lead_days} days". This alert ({alert.alert_id}) '
        "is managed under Admin > Contracts > Expiry alerts."
    )

    # Plain text: an aligned table.
    lines = [*intro, ""]
    if shown:
        rows = [_COLUMNS, *(_cells(c) for c in shown)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        for n, r in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        if more:
            lines.append(f"... and {more} more.")
        lines.append("")
    lines.append(footer)
    text = "\n".join(lines) + "\n"

    e = html.escape
    parts = [f"<p>{e(p)}</p>" for p in intro]
    if shown:
        cell = 'style="padding:4px 10px;border-bottom:1px solid #ddd;text-align:left"'
        head = "".join(f"<th {cell}>{e(c)}</th>" for c in _COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td {cell}>{e(v)}</td>" for v in _cells(c)) + "</tr>" for c in shown
        )
        parts.append(
            f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )
        if more:
            parts.append(f"<p>... and {more} more.</p>")
    parts.append(f'<p style="color:#666">{e(footer)}</p>')
    page = (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family:sans-serif;font-size:14px">{"".join(parts)}</body></html>'
    )
    return MailContent(text, page)


def build_message(
    smtp: SmtpSettings,
    *,
    tenant: Tenant,
    alert: AlertRow,
    recipients: list[str],
    subject: str,
    contracts: Sequence[ExpiringContract],
    today: date,
    scope: tuple[str | None, str | None],
    now: datetime,
    mail_id: str,
    kind: DeliveryKind,
    delivery_id: UUID,
) -> Message:
    content = render(
        alert=alert,
        contracts=contracts,
        today=today,
        timezone=tenant.timezone,
        scope=scope,
        test=kind is DeliveryKind.TEST,
    )
    return compose(
        smtp,
        to=recipients,
        subject=subject,  # the alert's subject, unchanged, test or not
        text=content.text,
        html=content.html,
        message_id=mail_id,
        date=now,
        headers={
            "X-RCM-Alert-Id": str(alert.alert_id),
            "X-RCM-Delivery-Id": str(delivery_id),
            "X-RCM-Delivery-Kind": kind.value,
        },
    )


async def _send(sender: MailSender, message: Message) -> SendResult | SendError:
    try:
        return await sender.send(message)
    except SendError as error:
        return error


# ---------------------------------------------------------------- the dispatcher's steps
#
# A tick handles a tenant in three steps, so that the database work is a couple of short
# transactions per tenant, whatever its number of alerts, and no connection is held while
# mail is in flight:
#   plan_tenant     one transaction: expire abandoned claims, list the due alerts, match
#                   them, record NO_CONTRACTS, claim the day for the others (committed
#                   before any mail leaves);
#   send_claimed    one mail per claim, concurrently, bounded by the mail sender;
#   record_outcomes one transaction: SUCCESS or FAILED (with its retry time) per claim.


@dataclass(frozen=True)
class ClaimedMail:
    """A due alert whose day this process has claimed: it alone mails it today."""

    alert: AlertRow
    delivery_id: UUID
    recipients: list[str]
    subject: str
    contracts: list[ExpiringContract]
    message_id: str


@dataclass
class TenantPlan:
    local_day: date
    due: int = 0
    abandoned_claims: int = 0
    no_contracts: int = 0
    skipped: int = 0  # another replica holds or used the day, or no longer due
    stopping: int = 0  # not claimed because the process is shutting down
    mails: list[ClaimedMail] = field(default_factory=list)


async def expire_abandoned_claims(
    session: AsyncSession, tenant: Tenant, *, now: datetime, claim_timeout: timedelta
) -> int:
    """Turn SENDING claims older than ``claim_timeout`` into FAILED "outcome unknown"."""
    expired = await repo.expire_abandoned_claims(
        session, started_before=now - claim_timeout, now=now, error=OUTCOME_UNKNOWN
    )
    await repo.set_alert_outcome(
        session,
        sorted({alert_id for alert_id, _ in expired}),
        status=AlertStatus.FAILED,
        error=OUTCOME_UNKNOWN,
    )
    for alert_id, delivery_id in expired:
        DELIVERIES.labels(DeliveryKind.SCHEDULED.value, DeliveryStatus.FAILED.value).inc()
        log.warning(
            "expiry_alert.claim_abandoned",
            tenant_id=str(tenant.tenant_id),
            alert_id=str(alert_id),
            delivery_id=str(delivery_id),
        )
    return len(expired)


async def list_due(session: AsyncSession, tenant: Tenant, *, now: datetime) -> list[AlertRow]:
    """Active alerts not yet sent on the tenant's current calendar day (nor waiting out
    a failure's backoff, nor blocked by an unknown outcome that day)."""
    return await repo.due_alerts(session, local_day=local_day(tenant, now), now=now)


def _common(values: Sequence[UUID | None]) -> UUID | None:
    first = values[0]
    return first if all(value == first for value in values) else None


def matching(
    alert: AlertRow, contracts: Sequence[ExpiringContract], today: date
) -> list[ExpiringContract]:
    """The alert's contracts among ``contracts`` (those expiring within a wider window and
    scope): in its scope, ending by today + its lead time. ``expiring_within`` grows with
    the window, so this equals asking ``expiring_contracts`` for the alert alone."""
    until = today + timedelta(days=alert.lead_days)
    return [
        c
        for c in contracts
        if c.effective_to <= until
        and (alert.payer_id is None or c.payer_id == alert.payer_id)
        and (alert.billing_entity_id is None or c.billing_entity_id == alert.billing_entity_id)
    ]


async def plan_tenant(
    session: AsyncSession,
    tenant: Tenant,
    *,
    now: datetime,
    claim_timeout: timedelta,
    smtp: SmtpSettings,
    stopping: asyncio.Event | None = None,
) -> TenantPlan:
    """Everything before the mail, in the caller's transaction (commit it before sending).

    The tenant's expiring contracts are read once, for the widest lead time and scope
    among its due alerts, and matched to each alert here."""
    today = local_day(tenant, now)
    plan = TenantPlan(local_day=today)
    plan.abandoned_claims = await expire_abandoned_claims(
        session, tenant, now=now, claim_timeout=claim_timeout
    )
    due = await list_due(session, tenant, now=now)
    plan.due = len(due)
    if not due:
        return plan
    contracts = await expiring_contracts(
        session,
        today=today,
        within_days=max(alert.lead_days for alert in due),
        payer_id=_common([alert.payer_id for alert in due]),
        billing_entity_id=_common([alert.billing_entity_id for alert in due]),
    )
    matches = {alert.alert_id: matching(alert, contracts, today) for alert in due}

    quiet = [alert.alert_id for alert in due if not matches[alert.alert_id]]
    if quiet:
        recorded = await repo.record_no_contracts(
            session, alert_ids=quiet, local_day=today, now=now
        )
        await repo.set_alert_outcome(session, quiet, status=AlertStatus.NO_CONTRACTS, error=None)
        plan.no_contracts = len(quiet)
        DELIVERIES.labels(DeliveryKind.SCHEDULED.value, DeliveryStatus.NO_CONTRACTS.value).inc(
            len(recorded)
        )
        for alert_id in recorded:
            log.info(
                "expiry_alert.no_contracts",
                tenant_id=str(tenant.tenant_id),
                alert_id=str(alert_id),
            )

    wanted = [alert for alert in due if matches[alert.alert_id]]
    if not wanted:
        return plan
    if stopping is not None and stopping.is_set():
        plan.stopping = len(wanted)
        return plan
    message_ids = {
        alert.alert_id: message_id(smtp, tenant, alert.alert_id, today) for alert in wanted
    }
    claims = await repo.claim(
        session,
        local_day=today,
        now=now,
        requests=[
            repo.ClaimRequest(
                alert_id=alert.alert_id,
                matched_contracts=len(matches[alert.alert_id]),
                matched_contract_ids=[c.contract_id for c in matches[alert.alert_id][:MAIL_ROWS]],
                message_id=message_ids[alert.alert_id],
            )
            for alert in wanted
        ],
    )
    by_id = {alert.alert_id: alert for alert in wanted}
    plan.mails = [
        ClaimedMail(
            alert=by_id[claim.alert_id],
            delivery_id=claim.delivery_id,
            recipients=claim.recipients,
            subject=claim.subject,
            contracts=matches[claim.alert_id],
            message_id=message_ids[claim.alert_id],
        )
        for claim in claims
    ]
    plan.skipped = len(wanted) - len(claims)
    claimed = {claim.alert_id for claim in claims}
    for alert in wanted:
        if alert.alert_id not in claimed:
            log.info(
                "expiry_alert.claim_lost",
                tenant_id=str(tenant.tenant_id),
                alert_id=str(alert.alert_id),
            )
    return plan


def _scope_of(mail: ClaimedMail) -> tuple[str | None, str | None]:
    """Names of the alert's payer and billing entity, from its matched contracts."""
    first = mail.contracts[0]
    return (
        first.payer_name if mail.alert.payer_id is not None else None,
        first.billing_entity_name if mail.alert.billing_entity_id is not None else None,
    )


async def send_claimed(
    sender: MailSender, smtp: SmtpSettings, tenant: Tenant, mail: ClaimedMail, *, now: datetime
) -> SendResult | SendError:
    """The claimed alert's mail. Never raises for a mail that could not be sent: a bug in
    building it is a failure to record like a refusal, not a claim left hanging."""
    try:
        message = build_message(
            smtp,
            tenant=tenant,
            alert=mail.alert,
            recipients=mail.recipients,
            subject=mail.subject,
            contracts=mail.contracts,
            today=local_day(tenant, now),
            scope=_scope_of(mail),
            now=now,
            mail_id=mail.message_id,
            kind=DeliveryKind.SCHEDULED,
            delivery_id=mail.delivery_id,
        )
    except Exception as error:
        log.error(
            "expiry_alert.message_failed",
            tenant_id=str(tenant.tenant_id),
            alert_id=str(mail.alert.alert_id),
            error=type(error).__name__,
        )
        return SendError(f"the mail could not be built ({type(error).__name__})", temporary=True)
    return await _send(sender, message)


async def record_outcomes(
    session: AsyncSession,
    tenant: Tenant,
    outcomes: Sequence[tuple[ClaimedMail, SendResult | SendError]],
    *,
    day: date,
    completed_at: datetime,
    retry: RetryPolicy,
) -> None:
    """Close the claims: SUCCESS with ``last_fired_at``, or FAILED with the relay's words
    and a retry time (1, 2, 4 ... times the base after each failure of the day, capped)."""
    if not outcomes:
        return
    failed_ids = [mail.alert.alert_id for mail, result in outcomes if isinstance(result, SendError)]
    earlier = await repo.failures_on(session, alert_ids=failed_ids, local_day=day)
    finished = []
    delays: dict[UUID, timedelta] = {}
    for mail, result in outcomes:
        if isinstance(result, SendResult):
            note = result.refused_note(len(mail.recipients))
            finished.append(
                repo.Finished(mail.delivery_id, mail.alert.alert_id, DeliveryStatus.SUCCESS, note)
            )
        else:
            delay = delays[mail.delivery_id] = retry.delay(earlier.get(mail.alert.alert_id, 0))
            finished.append(
                repo.Finished(
                    mail.delivery_id,
                    mail.alert.alert_id,
                    DeliveryStatus.FAILED,
                    str(result),
                    retry_at=completed_at + delay,
                )
            )
    recorded = await repo.finish(session, finished=finished, completed_at=completed_at)
    await repo.set_alert_outcomes(
        session,
        [
            repo.AlertOutcome(
                f.alert_id,
                AlertStatus(f.status.value),
                f.error,
                fired=f.status is DeliveryStatus.SUCCESS,
            )
            for f in finished
            if f.delivery_id in recorded
        ],
        fired_at=completed_at,
    )
    for (mail, result), f in zip(outcomes, finished, strict=True):
        ids = {
            "tenant_id": str(tenant.tenant_id),
            "alert_id": str(mail.alert.alert_id),
            "delivery_id": str(mail.delivery_id),
        }
        DELIVERIES.labels(DeliveryKind.SCHEDULED.value, f.status.value).inc()
        if f.delivery_id not in recorded:
            # Slower than the claim timeout: another tick already wrote "outcome unknown".
            log.warning("expiry_alert.finished_after_claim_timeout", **ids)
        if isinstance(result, SendResult):
            log.info(
                "expiry_alert.sent",
                matched_contracts=len(mail.contracts),
                refused_recipients=len(result.refused),
                **ids,
            )
        else:
            log.warning(
                "expiry_alert.send_failed",
                failure=result.kind,
                smtp_code=result.code,
                retry_in_seconds=int(delays[mail.delivery_id].total_seconds()),
                **ids,
            )


# ---------------------------------------------------------------- "Send test"


async def send_test(
    session: AsyncSession,
    tenant: Tenant,
    alert_id: UUID,
    *,
    actor: Principal,
    now: datetime,
    sender: MailSender,
    smtp: SmtpSettings,
) -> SendTestOutcome:
    """Send the alert's mail now, matches or not; record a TEST delivery and the alert's
    ``last_status``/``last_error``, never ``last_fired_at`` (the schedule is unaffected).

    A relay that is down is an answer (FAILED with its words), not an error.
    """
    alert = await repo.get_alert(session, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    today = local_day(tenant, now)
    contracts = await expiring_contracts(
        session,
        today=today,
        within_days=alert.lead_days,
        payer_id=alert.payer_id,
        billing_entity_id=alert.billing_entity_id,
    )
    scope = await repo.scope_names(
        session, payer_id=alert.payer_id, billing_entity_id=alert.billing_entity_id
    )
    delivery_id = uuid4()
    mail_id = message_id(smtp, tenant, alert.alert_id, today, test_id=delivery_id)
    message = build_message(
        smtp,
        tenant=tenant,
        alert=alert,
        recipients=alert.recipients,
        subject=alert.subject,
        contracts=contracts,
        today=today,
        scope=scope,
        now=now,
        mail_id=mail_id,
        kind=DeliveryKind.TEST,
        delivery_id=delivery_id,
    )
    result = await _send(sender, message)
    if isinstance(result, SendResult):
        status, error = DeliveryStatus.SUCCESS, result.refused_note(len(alert.recipients))
    else:
        status, error = DeliveryStatus.FAILED, str(result)
    await repo.insert_attempt(
        session,
        delivery_id=delivery_id,
        alert_id=alert.alert_id,
        kind=DeliveryKind.TEST,
        status=status,
        local_day=today,
        attempted_at=now,
        completed_at=now,
        matched_contract_ids=[c.contract_id for c in contracts[:MAIL_ROWS]],
        matched_contracts=len(contracts),
        recipients=alert.recipients,
        subject=alert.subject,
        message_id=mail_id,
        error=error,
    )
    await repo.set_alert_outcome(
        session, [alert.alert_id], status=AlertStatus(status.value), error=error
    )
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=AuditAction.EXECUTE,
        entity_type="contract_expiry_alert",
        entity_id=alert.alert_id,
        at=now,
        detail={
            "operation": "send_test",
            "delivery_id": str(delivery_id),
            "status": status.value,
            "matched_contracts": len(contracts),
        },
    )
    DELIVERIES.labels(DeliveryKind.TEST.value, status.value).inc()
    log.info(
        "expiry_alert.test_sent"
        if status is DeliveryStatus.SUCCESS
        else "expiry_alert.test_failed",
        tenant_id=str(tenant.tenant_id),
        alert_id=str(alert.alert_id),
        delivery_id=str(delivery_id),
        matched_contracts=len(contracts),
        failure=None if isinstance(result, SendResult) else result.kind,
    )
    return SendTestOutcome(status, len(contracts), error, delivery_id)
