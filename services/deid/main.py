"""deid: consume series ids, de-identify each series, queue it for sending."""

from __future__ import annotations

import asyncio
import functools

from relay_deid.handlers import DeidContext, deidentify_series
from relay_shared.deid import DeidConfig
from relay_shared.models import Stage
from relay_shared.runtime import Runtime, consume_until_stopped


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    config = DeidConfig.from_settings(rt.settings.deid_options,
                                      str(rt.settings.deid_recipe) if rt.settings.deid_recipe
                                      else None)
    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer, config, rt.settings.send_queue,
                      rt.vault)
    await consume_until_stopped(rt, stop, rt.settings.deid_queue,
                                functools.partial(deidentify_series, ctx), Stage.DEID)
