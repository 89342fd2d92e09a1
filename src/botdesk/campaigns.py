"""Campaigns: create and validate, schedule, start (audience snapshot), pause, resume, cancel,
status and report. The delivery worker (``delivery/worker.py``) does the sending.

Validation happens before anything is sent: the template's variables and markup, the length
of the text for every recipient after personal variables are filled in, the media file,
buttons, the segment, and a non-empty audience. The snapshot at start is one
``INSERT ... SELECT`` inside the database: the audience never passes through Python memory.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import LargeBinary, String, cast, func, insert, literal, select, update

from botdesk import media
from botdesk.bots import BotRecord
from botdesk.errors import DeliveryError, NotFoundError, TemplateError, ValidationError
from botdesk.segments import audience_filter, parse_segment
from botdesk.store.db import Database
from botdesk.store.models import (
    Bot,
    Campaign,
    Delivery,
    SequenceDroppedStep,
    SequenceStep,
    Subscriber,
)

ParseModeName = Literal["plain", "html", "markdownv2"]
PARSE_MODES: tuple[ParseModeName, ...] = ("plain", "html", "markdownv2")
TELEGRAM_PARSE_MODE = {"plain": None, "html": "HTML", "markdownv2": "MarkdownV2"}
MAX_BUTTONS = 10
BUTTON_URL_RE = re.compile(r"^(https?|tg)://[^\s]+$")
FREE_RATE = 30.0
STAR_PER_PAID_MESSAGE = 0.1
BUILTIN_FIELDS = ("first_name", "username", "language", "chat_id")
RATE_WINDOW_S = 10.0
STATES = ("pending", "sending", "sent", "failed", "suppressed", "uncertain", "cancelled")


@dataclass(frozen=True)
class SendOptions:
    """How every message of a campaign is sent (stored as JSON in ``campaigns.options``).

    ``silent``: disable_notification; ``protect``: protect_content (no forwarding or saving);
    ``link_preview``: False sends link_preview_options.is_disabled (text messages only);
    ``max_rate``: messages per second this campaign never exceeds (the bot's limit still
    holds when it is lower); None: the bot's rate."""

    silent: bool = False
    protect: bool = False
    link_preview: bool = True
    max_rate: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SendOptions:
        if not data:
            return cls()
        rate = data.get("max_rate")
        return cls(
            silent=bool(data.get("silent", False)),
            protect=bool(data.get("protect", False)),
            link_preview=bool(data.get("link_preview", True)),
            max_rate=float(rate) if rate is not None else None,
        )


MAX_RATE_CAP = 1000.0  # msg/s: Telegram's paid-broadcast ceiling


@dataclass
class CampaignSpec:
    bot: str
    text: str
    parse_mode: ParseModeName = "plain"
    photo: Path | None = None
    document: Path | None = None
    buttons: list[tuple[str, str]] = field(default_factory=list)
    segment: str | None = None
    at: datetime | None = None
    paid: bool = False
    name: str | None = None
    options: SendOptions = field(default_factory=SendOptions)
    video: Path | None = None
    animation: Path | None = None
    audio: Path | None = None
    voice: Path | None = None
    album: list[media.MediaItem] = field(default_factory=list)  # 2-10 items (sendMediaGroup)
    copy_from: str | None = None  # CHAT:MESSAGE_ID (copyMessage)


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    bot: str
    name: str
    state: str
    parse_mode: str
    media_kind: str | None
    segment: str | None
    paid: bool
    audience: int
    scheduled_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    options: SendOptions = field(default_factory=SendOptions)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("scheduled_at", "created_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


@dataclass(frozen=True)
class Estimate:
    audience: int
    stars: float  # estimated Star cost of a paid broadcast (0 if not paid)
    seconds: float  # estimated delivery time at the bot's limit
    media_kind: str | None = None  # photo | document | video | ... | album | copy
    media_path: Path | None = None


def estimate_stars(audience: int, *, paid_rate: float = 1000.0) -> float:
    """Messages above the free rate cost 0.1 Star each; at full paid speed that is most."""
    if audience <= 0:
        return 0.0
    paid_share = max(0.0, 1.0 - FREE_RATE / paid_rate)
    return round(math.ceil(audience * paid_share) * STAR_PER_PAID_MESSAGE, 1)


def _check_buttons(buttons: list[tuple[str, str]]) -> None:
    if len(buttons) > MAX_BUTTONS:
        raise ValidationError(f"at most {MAX_BUTTONS} buttons")
    from botdesk import clicks

    for label, url in buttons:
        if not label.strip() or len(label) > 64:
            raise ValidationError(f"button label must be 1-64 characters: {label!r}")
        if clicks.is_callback(url):
            clicks.parse_action(url)
            continue
        if not BUTTON_URL_RE.match(url):
            raise ValidationError(
                f"button URL must start with http://, https:// or tg:// (or be cb:ACTION): {url!r}"
            )


def _check_media(spec: CampaignSpec) -> tuple[str | None, Path | None]:
    """The one file of a campaign (photo, document, video, animation, audio or voice)."""
    given = [(k, p) for k in media.FILE_KINDS if (p := getattr(spec, k)) is not None]
    if len(given) + bool(spec.album) + bool(spec.copy_from) > 1:
        names = [f"--{k}" for k, _ in given] + ["--album"] * bool(spec.album)
        names += ["--copy-from"] * bool(spec.copy_from)
        raise ValidationError(f"give one of {', '.join(names)}, not several")
    if not given:
        return None, None
    kind, path = given[0]
    return kind, media.check_file(media.MediaItem(kind, path))


def _check_content(spec: CampaignSpec) -> tuple[str | None, Path | None]:
    """Media, album or copy: the rules that hold before any text is looked at."""
    kind, path = _check_media(spec)
    if spec.album:
        media.check_album(spec.album)
        if spec.buttons:
            raise ValidationError("an album cannot carry buttons (sendMediaGroup has no keyboard)")
        return "album", None
    if spec.copy_from:
        media.parse_copy_source(spec.copy_from)
        if spec.text.strip():
            raise ValidationError(
                "--copy-from sends the source message as it is; it takes no --text"
            )
        return "copy", None
    return kind, path


def _info(row: Any) -> CampaignInfo:
    m = row._mapping
    return CampaignInfo(
        id=m["id"],
        bot=m["bot_name"],
        name=m["name"],
        state=m["state"],
        parse_mode=m["parse_mode"],
        media_kind=m["media_kind"],
        segment=m["segment"],
        paid=bool(m["paid"]),
        audience=m["audience"],
        scheduled_at=m["scheduled_at"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        options=SendOptions.from_json(m["options"]),
    )


def _info_query() -> Any:
    return select(
        Campaign.id,
        Bot.name.label("bot_name"),
        Campaign.name,
        Campaign.state,
        Campaign.parse_mode,
        Campaign.media_kind,
        Campaign.segment,
        Campaign.paid,
        Campaign.audience,
        Campaign.scheduled_at,
        Campaign.created_at,
        Campaign.started_at,
        Campaign.finished_at,
        Campaign.options,
    ).join(Bot, Bot.id == Campaign.bot_id)


class Campaigns:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- creation and validation -----------------------------------------------------

    async def validate(self, spec: CampaignSpec, bot: BotRecord, *, now: datetime) -> Estimate:
        """Everything that can be checked before sending; raises one clear error."""
        from botdesk.delivery import templates

        if spec.parse_mode not in PARSE_MODES:
            raise ValidationError(f"parse mode must be one of {', '.join(PARSE_MODES)}")
        kind, path = _check_content(spec)
        # A file or an album may go without a caption; a text message may not.
        if not spec.text.strip() and kind is None:
            raise TemplateError("the message text is empty")
        _check_buttons(spec.buttons)
        cap = spec.options.max_rate
        if cap is not None and not 0 < cap <= MAX_RATE_CAP:
            raise ValidationError(f"--max-rate must be more than 0 and at most {MAX_RATE_CAP:g}")
        if spec.at is not None and spec.at.tzinfo is None:
            raise ValidationError("--at needs a timezone, e.g. 2026-12-01T09:00:00+00:00 or ...Z")
        if spec.segment:
            parse_segment(spec.segment)
        limit = templates.CAPTION_LIMIT if kind else templates.TEXT_LIMIT
        used = templates.variables(spec.text)
        custom = sorted(used - set(BUILTIN_FIELDS))
        where = audience_filter(bot.id, spec.segment, now=now)
        async with self.db.read() as conn:
            audience = int(
                (
                    await conn.execute(select(func.count()).select_from(Subscriber).where(where))
                ).scalar()
                or 0
            )
            if audience == 0:
                raise DeliveryError(
                    "the audience is empty: no active subscriber matches"
                    + (f" segment {spec.segment!r}" if spec.segment else "")
                )
            if custom:
                await self._check_custom_fields(conn, where, custom)
            # The markup and the length after entity parsing, for every recipient when the
            # text has personal variables (their values change the length), streamed.
            sample = {f: "" for f in BUILTIN_FIELDS} | {f: "" for f in custom}
            if spec.text.strip():
                self._check_one(templates, spec, sample, limit, who=None)
            if used and not await self._fits_everyone(conn, templates, spec, where, limit, used):
                await self._check_all(conn, templates, spec, where, limit)
        rate = min(1000.0 if spec.paid else FREE_RATE, cap or math.inf)
        stars = estimate_stars(audience, paid_rate=rate) if spec.paid else 0.0
        return Estimate(
            audience=audience,
            stars=stars,
            seconds=audience / rate,
            media_kind=kind,
            media_path=path,
        )

    @staticmethod
    def _check_one(
        templates: Any,
        spec: CampaignSpec,
        values: Mapping[str, str | None],
        limit: int,
        who: int | None,
    ) -> None:
        pm = spec.parse_mode
        try:
            text = templates.render(spec.text, values, parse_mode=pm)
            n = templates.visible_length(text, parse_mode=pm)
        except TemplateError as exc:
            raise TemplateError(
                str(exc) + (f" (for chat {who})" if who is not None else "")
            ) from None
        if n > limit:
            what = "caption" if limit == templates.CAPTION_LIMIT else "text"
            raise TemplateError(
                f"{what} is {n} characters after formatting"
                + (f" for chat {who}" if who is not None else "")
                + f"; Telegram allows {limit}"
            )

    async def _check_custom_fields(self, conn: Any, where: Any, custom: list[str]) -> None:
        # A custom variable must exist as a field of at least one recipient; otherwise it is
        # almost certainly a typo ({frist_name}), which we refuse like an unknown variable.
        rows = await conn.stream(
            select(Subscriber.fields).where(where).where(Subscriber.fields.is_not(None))
        )
        seen: set[str] = set()
        async for (fields,) in rows:
            if isinstance(fields, dict):
                seen.update(str(k) for k in fields)
                if seen.issuperset(custom):
                    return
        missing = sorted(set(custom) - seen)
        known = ", ".join(BUILTIN_FIELDS + tuple(sorted(seen)))
        raise TemplateError(
            f"unknown variable{'s' if len(missing) > 1 else ''} "
            f"{', '.join('{' + m + '}' for m in missing)}; "
            f"known: {known}"
        )

    async def _fits_everyone(
        self, conn: Any, templates: Any, spec: CampaignSpec, where: Any, limit: int, used: set[str]
    ) -> bool:
        """True when no recipient can exceed ``limit``, proven without rendering each one.

        Values are escaped for the parse mode, so each occurrence of a variable adds exactly
        its value's UTF-16 length to the visible text (or its default's, when empty). A value's
        UTF-8 byte length is never below its UTF-16 length, so rendering every variable as the
        longest byte length among the recipients (or as empty, which selects the default) gives
        an upper bound: one aggregate query instead of a million renders. Custom fields live in
        JSON and are not bounded here; when the bound does not fit, ``_check_all`` decides.
        """
        names = sorted(used)
        if not set(names) <= set(BUILTIN_FIELDS):
            return False
        columns = {
            "first_name": Subscriber.first_name,
            "username": Subscriber.username,
            "language": Subscriber.language,
            "chat_id": cast(Subscriber.chat_id, String),
        }

        def octets(col: Any) -> Any:
            if self.db.is_sqlite:
                return func.length(cast(col, LargeBinary))
            return func.octet_length(col)

        row = (
            await conn.execute(select(*(func.max(octets(columns[n])) for n in names)).where(where))
        ).one()
        longest = [int(v or 0) for v in row]
        pm = spec.parse_mode
        for choice in itertools.product((False, True), repeat=len(names)):
            values = {
                n: "x" * m if on else "" for n, m, on in zip(names, longest, choice, strict=True)
            }
            try:
                length = templates.visible_length(
                    templates.render(spec.text, values, parse_mode=pm), parse_mode=pm
                )
            except TemplateError:
                return False
            if length > limit:
                return False
        return True

    async def _check_all(
        self, conn: Any, templates: Any, spec: CampaignSpec, where: Any, limit: int
    ) -> None:
        result = await conn.stream(
            select(
                Subscriber.chat_id,
                Subscriber.first_name,
                Subscriber.username,
                Subscriber.language,
                Subscriber.fields,
            ).where(where)
        )
        async for chat_id, first_name, username, language, fields in result:
            values: dict[str, str | None] = {}
            if isinstance(fields, dict):
                values.update({str(k): None if v is None else str(v) for k, v in fields.items()})
            values.update(
                first_name=first_name, username=username, language=language, chat_id=str(chat_id)
            )
            self._check_one(templates, spec, values, limit, who=chat_id)

    async def check_template(self, spec: CampaignSpec, where: Any, *, limit: int) -> None:
        """``validate``'s checks of the text for the subscribers ``where`` selects: an edit
        of delivered messages checks its new text against the people who have them."""
        from botdesk.delivery import templates

        if spec.parse_mode not in PARSE_MODES:
            raise ValidationError(f"parse mode must be one of {', '.join(PARSE_MODES)}")
        if not spec.text.strip():
            raise TemplateError("the message text is empty")
        used = templates.variables(spec.text)
        custom = sorted(used - set(BUILTIN_FIELDS))
        async with self.db.read() as conn:
            if custom:
                await self._check_custom_fields(conn, where, custom)
            sample = {f: "" for f in BUILTIN_FIELDS} | {f: "" for f in custom}
            self._check_one(templates, spec, sample, limit, who=None)
            if used and not await self._fits_everyone(conn, templates, spec, where, limit, used):
                await self._check_all(conn, templates, spec, where, limit)

    async def create(
        self,
        spec: CampaignSpec,
        bot: BotRecord,
        *,
        now: datetime,
        checked: Estimate | None = None,
    ) -> CampaignInfo:
        """Validate (unless ``checked`` is this spec's ``validate`` result) and store a draft,
        or a scheduled campaign when the spec has a start time."""
        est = checked or await self.validate(spec, bot, now=now)
        kind, path = est.media_kind, est.media_path
        scheduled = spec.at is not None
        async with self.db.write() as conn:
            cid = (
                await conn.execute(
                    insert(Campaign)
                    .values(
                        bot_id=bot.id,
                        name=spec.name or f"{bot.name} {now:%Y-%m-%d %H:%M}",
                        state="scheduled" if scheduled else "draft",
                        text=spec.text,
                        parse_mode=spec.parse_mode,
                        media_kind=kind,
                        media_path=str(path) if path else None,
                        media_items=media.items_json(media.check_album(spec.album))
                        if spec.album
                        else None,
                        copy_from=media.parse_copy_source(spec.copy_from).as_json()
                        if spec.copy_from
                        else None,
                        buttons=[list(b) for b in spec.buttons] or None,
                        segment=spec.segment or None,
                        paid=spec.paid,
                        options=spec.options.as_dict() if spec.options != SendOptions() else None,
                        audience=0,
                        scheduled_at=spec.at,
                        created_at=now,
                    )
                    .returning(Campaign.id)
                )
            ).scalar_one()
        return await self.get(cid)

    # -- reading ---------------------------------------------------------------------

    async def get(self, campaign_id: int) -> CampaignInfo:
        async with self.db.read() as conn:
            row = (await conn.execute(_info_query().where(Campaign.id == campaign_id))).first()
        if row is None:
            raise NotFoundError(f"no campaign with id {campaign_id}")
        return _info(row)

    async def recent(
        self, *, bot: str | None = None, limit: int = 100, steps: bool = False
    ) -> list[CampaignInfo]:
        """Campaigns, newest first. A sequence's steps are campaigns of their own (that is how
        the engine sends them) but belong to their sequence's view: left out unless ``steps``,
        and so are the cancelled campaigns of steps an update dropped."""
        q = _info_query().order_by(Campaign.id.desc()).limit(limit)
        if not steps:  # a step's campaign, or one an update dropped from its sequence
            q = q.where(
                ~select(SequenceStep.number)
                .where(SequenceStep.campaign_id == Campaign.id)
                .exists(),
                ~select(SequenceDroppedStep.number)
                .where(SequenceDroppedStep.campaign_id == Campaign.id)
                .exists(),
            )
        if bot is not None:
            q = q.where(Bot.name == bot)
        async with self.db.read() as conn:
            return [_info(r) for r in (await conn.execute(q)).all()]

    async def status(self, campaign_id: int, *, now: datetime) -> dict[str, Any]:
        from botdesk.delivery import ledger

        info = await self.get(campaign_id)
        async with self.db.read() as conn:
            counts = await ledger.counts(conn, campaign_id)
            recent = int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            Delivery.campaign_id == campaign_id,
                            Delivery.state != "pending",
                            Delivery.updated_at >= now - timedelta(seconds=RATE_WINDOW_S),
                        )
                    )
                ).scalar()
                or 0
            )
        rate = recent / RATE_WINDOW_S if info.state == "running" else 0.0
        out: dict[str, Any] = {"id": info.id, "state": info.state, "audience": info.audience}
        for s in STATES:
            out[s] = counts.get(s, 0)
        left = out["pending"] + out["sending"]
        out["rate_per_s"] = round(rate, 2)
        out["eta_s"] = round(left / rate, 1) if rate > 0 else (0.0 if left == 0 else None)
        out["options"] = info.options.as_dict()
        return out

    async def report(self, campaign_id: int) -> dict[str, Any]:
        info = await self.get(campaign_id)
        async with self.db.read() as conn:
            from botdesk.delivery import ledger

            counts = await ledger.counts(conn, campaign_id)
            reasons = (
                await conn.execute(
                    select(Delivery.state, Delivery.error, func.count())
                    .where(Delivery.campaign_id == campaign_id, Delivery.error.is_not(None))
                    .group_by(Delivery.state, Delivery.error)
                    .order_by(func.count().desc())
                )
            ).all()
            from botdesk import clicks

            click_summary = await clicks.summary(conn, campaign_id, delivered=counts.get("sent", 0))
        out = {
            "campaign": info.as_dict(),
            "counts": {s: counts.get(s, 0) for s in STATES},
            "clicks": click_summary,
            "reasons": [{"state": r[0], "reason": r[1], "count": int(r[2])} for r in reasons],
        }
        from botdesk import ab_campaigns

        if (ab := await ab_campaigns.summary(self.db, campaign_id)) is not None:
            out["ab_test"] = ab
        return out

    async def recipients(
        self, campaign_id: int, *, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Per-recipient outcomes in audience order, streamed (for the CSV report); the first
        ``limit`` only when given (a table's first screens)."""
        await self.get(campaign_id)
        async with self.db.read() as conn:
            result = await conn.stream(
                select(
                    Delivery.chat_id,
                    Subscriber.username,
                    Delivery.state,
                    Delivery.attempts,
                    Delivery.message_id,
                    Delivery.error,
                    Delivery.updated_at,
                )
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id, isouter=True)
                .where(Delivery.campaign_id == campaign_id)
                .order_by(Delivery.id)
                .limit(limit)
            )
            async for r in result:
                yield {
                    "chat_id": r[0],
                    "username": r[1] or "",
                    "state": r[2],
                    "attempts": r[3],
                    "message_id": r[4] if r[4] is not None else "",
                    "error": r[5] or "",
                    "updated_at": r[6].isoformat() if r[6] else "",
                }

    # -- state changes ---------------------------------------------------------------

    async def start(self, campaign_id: int, *, now: datetime) -> CampaignInfo:
        """Snapshot the audience into pending delivery rows and start sending."""
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(Campaign.state, Campaign.bot_id, Campaign.segment).where(
                        Campaign.id == campaign_id
                    )
                )
            ).first()
            if row is None:
                raise NotFoundError(f"no campaign with id {campaign_id}")
            state, bot_id, segment = row
            if state not in ("draft", "scheduled"):
                raise DeliveryError(
                    f"campaign {campaign_id} is {state}; only a draft or scheduled one starts"
                )
            from botdesk import ab_campaigns  # an A/B test's start is its split

            if await ab_campaigns.is_test(conn, campaign_id):
                await ab_campaigns.start_split(conn, campaign_id, bot_id, segment, now=now)
            else:
                await self._snapshot(conn, campaign_id, bot_id, segment, now=now)
        return await self.get(campaign_id)

    async def _snapshot(
        self, conn: Any, campaign_id: int, bot_id: int, segment: str | None, *, now: datetime
    ) -> int:
        where = audience_filter(bot_id, segment, now=now)
        src = select(
            literal(campaign_id),
            Subscriber.id,
            Subscriber.chat_id,
            literal("pending"),
            literal(0),
        ).where(where)
        res = await conn.execute(
            insert(Delivery).from_select(
                ["campaign_id", "subscriber_id", "chat_id", "state", "attempts"], src
            )
        )
        audience = int(res.rowcount or 0)
        if audience == 0:
            raise DeliveryError("the audience is empty now: nothing to send, campaign not started")
        await conn.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(state="running", audience=audience, started_at=now)
        )
        return audience

    async def start_due(self, bot_id: int, *, now: datetime) -> list[int]:
        """Start scheduled campaigns whose time has come (also after a restart)."""
        started: list[int] = []
        async with self.db.read() as conn:
            due = (
                await conn.execute(
                    select(Campaign.id, Campaign.segment).where(
                        Campaign.bot_id == bot_id,
                        Campaign.state == "scheduled",
                        Campaign.scheduled_at <= now,
                    )
                )
            ).all()
        for cid, segment in due:
            async with self.db.write() as conn:
                # Claim the start: only one worker moves it out of "scheduled".
                res = await conn.execute(
                    update(Campaign)
                    .where(Campaign.id == cid, Campaign.state == "scheduled")
                    .values(state="starting")
                )
                if not res.rowcount:
                    continue
                try:
                    async with conn.begin_nested():
                        await self._snapshot(conn, cid, bot_id, segment, now=now)
                except DeliveryError:
                    await conn.execute(
                        update(Campaign)
                        .where(Campaign.id == cid)
                        .values(state="completed", audience=0, started_at=now, finished_at=now)
                    )
                    continue
            started.append(cid)
        # A/B tests whose window has ended are decided here too: serve calls this every
        # second per bot, and a winner sent to the holdout is a campaign that starts now.
        from botdesk import ab_campaigns

        for out in await ab_campaigns.decide_due(self.db, bot_id, now=now):
            if out.sent_to is not None and out.holdout:
                started.append(out.campaign_id)
        # Sequences enrol and issue their due steps here too: a step is a row of a running
        # campaign, which the engine calling this claims like any other.
        from botdesk import sequence_runner

        await sequence_runner.tick(self.db, bot_id, now=now)
        return started

    async def _transition(
        self, campaign_id: int, allowed: tuple[str, ...], target: str, *, now: datetime
    ) -> CampaignInfo:
        info = await self.get(campaign_id)
        if info.state not in allowed:
            raise DeliveryError(
                f"campaign {campaign_id} is {info.state}; cannot go to {target} "
                f"(only from {' or '.join(allowed)})"
            )
        async with self.db.write() as conn:
            values: dict[str, Any] = {"state": target}
            if target == "cancelled":
                values["finished_at"] = now
                await conn.execute(
                    update(Delivery)
                    .where(Delivery.campaign_id == campaign_id, Delivery.state == "pending")
                    .values(state="cancelled", updated_at=now, lease_owner=None)
                )
            await conn.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.state.in_(allowed))
                .values(**values)
            )
        return await self.get(campaign_id)

    async def pause(self, campaign_id: int, *, now: datetime) -> CampaignInfo:
        return await self._transition(campaign_id, ("running",), "paused", now=now)

    async def resume(self, campaign_id: int, *, now: datetime) -> CampaignInfo:
        return await self._transition(campaign_id, ("paused",), "running", now=now)

    async def cancel(self, campaign_id: int, *, now: datetime) -> CampaignInfo:
        from botdesk import ab_campaigns  # an A/B test's cancel takes its variants with it

        children = await ab_campaigns.variant_campaigns(self.db, campaign_id)
        allowed: tuple[str, ...] = ("draft", "scheduled", "running", "paused")
        if children:
            allowed += (ab_campaigns.TESTING, ab_campaigns.UNDECIDED)
        info = await self._transition(campaign_id, allowed, "cancelled", now=now)
        for child in children:
            if (await self.get(child)).state in (*allowed, ab_campaigns.VARIANT_STATE):
                await self._transition(
                    child, (*allowed, ab_campaigns.VARIANT_STATE), "cancelled", now=now
                )
        return info

    async def resend_uncertain(self, campaign_id: int, *, now: datetime) -> int:
        """The operator's explicit decision: send the uncertain recipients again."""
        info = await self.get(campaign_id)
        if info.state == "cancelled":
            raise DeliveryError(f"campaign {campaign_id} is cancelled")
        async with self.db.write() as conn:
            res = await conn.execute(
                update(Delivery)
                .where(Delivery.campaign_id == campaign_id, Delivery.state == "uncertain")
                .values(
                    state="pending", error=None, not_before=None, lease_owner=None, updated_at=now
                )
            )
            n = int(res.rowcount or 0)
            if n and info.state == "completed":
                await conn.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign_id)
                    .values(state="running", finished_at=None)
                )
        return n

    async def complete_if_done(self, campaign_id: int, *, now: datetime) -> bool:
        from botdesk.delivery import ledger

        async with self.db.write() as conn:
            if await ledger.open_work(conn, campaign_id):
                return False
            res = await conn.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.state == "running")
                .values(state="completed", finished_at=now)
            )
            return bool(res.rowcount)
