"""The tracked-link endpoint `serve` answers beside its webhooks: GET <base>/r/<token>.

A genuine, current token records a click (``clicks.record_link``) and answers 302 to the
button's real URL; a forged, altered or malformed one gets 404, an expired one 410, and
neither redirects nor records anything. Every opening counts as a click, so a link opened
twice is two clicks by one unique clicker.
"""

from __future__ import annotations

from aiohttp import web

from botdesk import clicks
from botdesk.clock import Clock
from botdesk.links import LinkRefused, LinkSigner
from botdesk.log import get_logger
from botdesk.store.db import Database

log = get_logger(__name__)

ROUTE_PREFIX = "/r/"


class LinkRedirect:
    def __init__(self, *, db: Database, signer: LinkSigner, clock: Clock) -> None:
        self.db = db
        self.signer = signer
        self.clock = clock

    async def handle(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        try:
            claim = self.signer.verify(request.match_info["token"], now=now)
        except LinkRefused as exc:
            return web.Response(status=410 if exc.expired else 404, text=str(exc))
        async with self.db.write() as conn:
            url = await clicks.record_link(
                conn, delivery_id=claim.delivery_id, button=claim.button, now=now
            )
        if url is None:
            return web.Response(status=404, text="not found")
        raise web.HTTPFound(location=url)
