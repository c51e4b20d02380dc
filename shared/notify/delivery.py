"""Delivering recorded notifications: each hook's in the order they were recorded, one
at a time, signed with the hook's secret and the time of sending. A failed attempt
holds that hook's queue (so a receiver never sees a later event before an earlier one)
and is retried with doubling delay; after the last attempt the notification is
GAVE_UP, visible in the API, and the hook's queue moves on.

One process of a deployment delivers (the one running ingest, as for the sweep's
requeue), so two deliverers never race on one hook's order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from relay_shared.db import session_scope
from relay_shared.metrics import WEBHOOK_DELIVERIES
from relay_shared.models import Notification, NotificationState, utcnow
from relay_shared.notify.hooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, Webhook, signature
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
PRUNE_INTERVAL = 3600.0


def http_client(settings: Settings) -> httpx.AsyncClient:
    verify: bool | str = str(settings.tls_ca_bundle) if settings.tls_ca_bundle \
        else settings.tls_verify
    return httpx.AsyncClient(timeout=settings.webhook_timeout, verify=verify,
                             follow_redirects=False)


async def deliver_due(engine: Engine, settings: Settings, client: httpx.AsyncClient) -> int:
    """Deliver what is due now for every hook; returns how many arrived."""
    delivered = 0
    for hook in settings.webhooks:
        secret = settings.webhook_secret_for(hook.name)
        assert secret is not None  # the settings refuse a hook without one
        delivered += await _deliver_hook(engine, settings, client, hook, secret)
    return delivered


async def _deliver_hook(engine: Engine, settings: Settings, client: httpx.AsyncClient,
                        hook: Webhook, secret: bytes) -> int:
    delivered = 0
    while (head := await asyncio.to_thread(_head, engine, hook.name)) is not None:
        if head.next_attempt_at > utcnow():
            break
        error = await _post(client, hook, secret, head)
        await asyncio.to_thread(_settle, engine, settings, head.id, error)
        if error is not None:
            break
        delivered += 1
    return delivered


def _head(engine: Engine, hook: str) -> Notification | None:
    with Session(engine) as session:
        return session.exec(select(Notification).where(
            Notification.hook == hook, Notification.state == NotificationState.PENDING)
            .order_by(col(Notification.id)).limit(1)).first()


async def _post(client: httpx.AsyncClient, hook: Webhook, secret: bytes,
                notification: Notification) -> str | None:
    """None if the receiver took it, else a fixed phrase saying why not."""
    body = notification.body.encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-Relay-Event": notification.event,
               "X-Relay-Delivery": str(notification.id), TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: signature(secret, timestamp, body)}
    try:
        answer = await client.post(hook.url, content=body, headers=headers)
    except httpx.TimeoutException:
        return "timed out"
    except httpx.HTTPError:
        return "connection failed"
    return None if answer.is_success else f"HTTP {answer.status_code}"


def _settle(engine: Engine, settings: Settings, notification_id: int | None,
            error: str | None) -> None:
    with session_scope(engine) as session:
        row = session.get(Notification, notification_id)
        if row is None:
            return
        outcome = _apply(row, error, settings)
        WEBHOOK_DELIVERIES.labels(hook=row.hook, outcome=outcome).inc()
        if error is not None:
            log.warning("webhook delivery failed", extra={
                "hook": row.hook, "notification_id": row.id, "attempt": row.attempts,
                "error": error})


def _apply(row: Notification, error: str | None, settings: Settings) -> str:
    row.attempts += 1
    row.last_error = error
    now = utcnow()
    if error is None:
        row.state, row.delivered_at = NotificationState.DELIVERED.value, now
        return "delivered"
    if row.attempts >= settings.webhook_max_attempts:
        row.state = NotificationState.GAVE_UP.value
        return "gave_up"
    delay = min(settings.webhook_retry_base_delay * 2 ** (row.attempts - 1),
                settings.webhook_retry_max_delay)
    row.next_attempt_at = now + timedelta(seconds=delay)
    return "failed"


def prune_delivered(engine: Engine, older_than: timedelta) -> int:
    """Delete delivered notifications older than ``older_than``; undelivered ones stay."""
    with session_scope(engine) as session:
        result = session.execute(delete(Notification).where(
            Notification.state == NotificationState.DELIVERED.value,
            col(Notification.delivered_at) < utcnow() - older_than))
        return int(getattr(result, "rowcount", 0) or 0)


async def run(engine: Engine, settings: Settings, stop: asyncio.Event) -> None:
    """Deliver until ``stop``; a database or receiver that is down waits for the next round."""
    retain = timedelta(days=settings.webhook_retain_days)
    next_prune = 0.0
    async with http_client(settings) as client:
        while not stop.is_set():
            try:
                await deliver_due(engine, settings, client)
                if time.monotonic() >= next_prune:
                    await asyncio.to_thread(prune_delivered, engine, retain)
                    next_prune = time.monotonic() + PRUNE_INTERVAL
            except Exception:  # the database is down: try again on the next round
                log.warning("webhook delivery round failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.webhook_poll_interval)
