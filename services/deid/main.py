"""deid: consume series ids, de-identify each series, queue it for sending."""

from __future__ import annotations

import asyncio

from relay_deid.handlers import DeidContext
from relay_deid.identifiers import RemoteIdentifiers
from relay_deid.projects import ProjectContexts
from relay_shared import tlsconfig
from relay_shared.deid import DeidConfig
from relay_shared.guard import load_rules
from relay_shared.models import Stage
from relay_shared.pixel_learning import LearnedRules
from relay_shared.pixels import PixelPolicy
from relay_shared.review import ReviewChoice
from relay_shared.runtime import Runtime, consume_until_stopped
from relay_shared.settings import Settings


def _identifiers_source(settings: Settings) -> RemoteIdentifiers | None:
    if not settings.identifiers_url:
        return None
    token = settings.identifiers_token.get_secret_value() if settings.identifiers_token else None
    return RemoteIdentifiers(settings.identifiers_url, settings.deid_key_id,
                             settings.identifiers_timeout, token=token,
                             verify=tlsconfig.http_verify(settings))


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    if rt.settings.identifiers_url:
        tlsconfig.warn_if_unverified(rt.settings, "deid")
    config = DeidConfig.from_settings(rt.settings.deid_options,
                                      str(rt.settings.deid_recipe) if rt.settings.deid_recipe
                                      else None, rt.settings.deid_local_coding_schemes)
    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer, config, rt.settings.send_queue,
                      rt.vault, _identifiers_source(rt.settings),
                      PixelPolicy.from_settings(rt.settings),
                      load_rules(rt.settings.guard_id_patterns),
                      ReviewChoice(rt.settings.review_mode, rt.settings.review_one_in),
                      LearnedRules(rt.engine, rt.settings.pixel_learned_refresh),
                      max_inflated_bytes=rt.settings.max_inflated_bytes)
    contexts = ProjectContexts(ctx, rt.projects, rt.settings)
    await consume_until_stopped(rt, stop, rt.settings.deid_queue, contexts.deidentify,
                                Stage.DEID)
