"""The console's one door to botdesk: the services the CLI uses, opened with ``app.open_app``.

Views call these coroutines through the bridge; nothing here is Qt. Each method is a thin
composition of services (campaigns, audience, inbox, knowledge base, bots, overview, config):
no SQL, no store models and no rule of a service written again.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botdesk import ab_campaigns, audience, inbox, knowledge_base, overview
from botdesk.app import App
from botdesk.bots import BotRecord, BotRegistry
from botdesk.campaign_actions import ActionPlan, ActionSpec, CampaignActions
from botdesk.campaigns import CampaignInfo, Campaigns, CampaignSpec, Estimate
from botdesk.config import save_settings
from botdesk.errors import NotFoundError
from botdesk.sequence_file import SequenceFileError, read_sequence
from botdesk.sequences import SequenceInfo, Sequences

YIELD_ROWS = 250


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BotCard:
    """One bot on the dashboard."""

    name: str
    username: str
    state: str  # serving | paused | error | idle | served elsewhere
    reason: str | None
    holder: str | None
    subscribers: dict[str, int]
    days: list[overview.DayCounts]


@dataclass(frozen=True)
class CampaignCard:
    info: CampaignInfo
    status: dict[str, Any]


@dataclass
class Dashboard:
    bots: list[BotCard] = field(default_factory=list)
    campaigns: list[CampaignCard] = field(default_factory=list)
    waiting: list[inbox.ConversationView] = field(default_factory=list)
    workers: int = 0


class Services:
    """What the console can do. ``runtime`` is the in-process runtime when the console serves."""

    def __init__(self, app: App, *, serving: bool) -> None:
        self.app = app
        self.serving = serving
        self.runtime: Any = None
        self._port: Any = None
        self.campaigns = Campaigns(app.db)
        self.actions = CampaignActions(app.db)

    # -- the in-process runtime ----------------------------------------------------------

    async def start_runtime(self) -> bool:
        """Serve every registered bot in this process (single-machine mode)."""
        if not self.serving or self.runtime is not None:
            return False
        if not await self.bots():
            return False
        # Its own thread and loop: delivery at 1,000 msg/s on Qt's loop stalls the window.
        from botdesk.runtime.background import BackgroundRuntime

        rt = BackgroundRuntime(self.app.home.path)
        await rt.start()
        self.runtime = rt
        return True

    async def restart_runtime(self) -> None:
        await self.stop_runtime()
        await self.start_runtime()

    async def stop_runtime(self) -> None:
        rt, self.runtime = self.runtime, None
        if rt is not None:
            await rt.stop()

    async def aclose(self) -> None:
        await self.stop_runtime()
        port, self._port = self._port, None
        if port is not None:
            await port.aclose()

    # -- bots ------------------------------------------------------------------------------

    def registry(self) -> BotRegistry:
        return BotRegistry(self.app.db, self.app.secrets)

    async def bots(self) -> list[BotRecord]:
        return [b for b in await self.registry().list() if b.status != "removed"]

    async def bot(self, name: str) -> BotRecord:
        return await self.registry().get(name)

    async def add_bot(self, name: str, token: str, *, api_base: str | None) -> BotRecord:
        """The token is checked with getMe and stored only in the secret store."""
        net = self.app.settings.network
        rec = await self.registry().add(
            name,
            token,
            api_base=api_base or None,
            connect_timeout=net.connect_timeout,
            read_timeout=net.read_timeout,
        )
        if self.serving:
            await self.restart_runtime()
        return rec

    async def remove_bot(self, name: str) -> None:
        if self.runtime is not None:
            await self.stop_runtime()
        await self.registry().remove(name)
        await self.start_runtime()

    # -- dashboard -------------------------------------------------------------------------

    def _bot_state(self, rec: BotRecord, holder: str | None) -> tuple[str, str | None]:
        if rec.status not in ("active",):
            return ("error" if rec.status == "error" else rec.status), rec.status_reason
        if self.runtime is not None and rec.name in self.runtime.runs:
            return "serving", None
        if holder:
            return "served elsewhere", None
        return "idle", "no worker serves this bot (start `botdesk serve`)"

    async def dashboard(self, *, days: int = 14) -> Dashboard:
        t = now()
        held = await overview.holders(self.app.db, now=t)
        out = Dashboard()
        for rec in await self.bots():
            state, reason = self._bot_state(rec, held.get(rec.id))
            out.bots.append(
                BotCard(
                    name=rec.name,
                    username=rec.username,
                    state=state,
                    reason=reason,
                    holder=held.get(rec.id),
                    subscribers=await overview.status_counts(self.app.db, rec.id),
                    days=await overview.daily_changes(self.app.db, rec.id, days=days, now=t),
                )
            )
        for info in await self.campaigns.recent(limit=8):
            out.campaigns.append(CampaignCard(info, await self.campaigns.status(info.id, now=t)))
        out.waiting = await inbox.list_conversations(self.app.db, needs_human=True, limit=50)
        out.workers = await overview.live_workers(
            self.app.db, ttl=self.app.settings.delivery.lease_seconds, now=t
        )
        return out

    # -- subscribers -----------------------------------------------------------------------

    async def subscriber_count(self, bot: str, segment: str | None) -> int:
        rec = await self.bot(bot)
        return await audience.count(self.app.db, rec.id, segment or None, now=now())

    async def subscriber_page(
        self, bot: str, segment: str | None, *, after: int | None, skip: int, limit: int
    ) -> tuple[list[audience.SubscriberView], int | None]:
        rec = await self.bot(bot)
        return await audience.page_keyed(
            self.app.db, rec.id, segment or None, now=now(), after=after, skip=skip, limit=limit
        )

    async def tag(self, bot: str, chat_ids: list[int], tag: str, *, remove: bool = False) -> int:
        rec = await self.bot(bot)
        fn = audience.untag if remove else audience.tag
        changed = 0
        for chat in chat_ids:
            changed += bool(await fn(self.app.db, rec.id, chat, tag))
        return changed

    async def export_subscribers(self, bot: str, segment: str | None, path: Path) -> int:
        """The file `botdesk subscribers export` writes (formulas defused, atomic)."""
        rec = await self.bot(bot)
        return await audience.export_csv(self.app.db, rec.id, segment or None, path, now=now())

    async def sample_subscribers(self, bot: str, segment: str | None, limit: int = 50) -> list[Any]:
        views, _ = await self.subscriber_page(bot, segment, after=None, skip=0, limit=limit)
        return views

    # -- campaigns -------------------------------------------------------------------------

    async def validate(self, spec: CampaignSpec) -> Estimate:
        return await self.campaigns.validate(spec, await self.bot(spec.bot), now=now())

    async def create_campaign(self, spec: CampaignSpec, *, start: bool) -> CampaignInfo:
        rec = await self.bot(spec.bot)
        t = now()
        est = await self.campaigns.validate(spec, rec, now=t)
        info = await self.campaigns.create(spec, rec, now=t, checked=est)
        if start and spec.at is None:
            info = await self.campaigns.start(info.id, now=now())
        return info

    async def create_ab_test(
        self,
        spec: CampaignSpec,
        variants: list[str],
        *,
        test_share: float,
        metric: str,
        decide_after: str,
        start: bool,
    ) -> CampaignInfo:
        """`botdesk campaign create --variant ... [--test-share --metric --decide-after]`,
        then `campaign start` when ``start``: the parent campaign."""
        window = ab_campaigns.parse_duration(decide_after)
        parent = await ab_campaigns.AbTests(self.app.db).create(
            spec,
            variants,
            await self.bot(spec.bot),
            test_share=test_share,
            metric=metric,
            decide_after=window,
            now=now(),
        )
        if start:
            return await self.campaigns.start(parent, now=now())
        return await self.campaigns.get(parent)

    async def campaign_list(self) -> list[CampaignInfo]:
        return await self.campaigns.recent(limit=200)

    async def campaign_action(self, campaign_id: int, action: str) -> CampaignInfo:
        if action not in ("start", "pause", "resume", "cancel"):
            raise NotFoundError(f"no campaign action {action!r}")
        fn = getattr(self.campaigns, action)
        info: CampaignInfo = await fn(campaign_id, now=now())
        return info

    async def campaign_status(self, campaign_id: int) -> dict[str, Any]:
        return await self.campaigns.status(campaign_id, now=now())

    async def campaign_report(self, campaign_id: int) -> dict[str, Any]:
        return await self.campaigns.report(campaign_id)

    async def recipients(self, campaign_id: int, limit: int = 5000) -> list[dict[str, Any]]:
        """The first ``limit`` recipients (the whole list is the CSV export's). The loop gets
        a turn every ``YIELD_ROWS`` rows: buffered rows come without one, and the window's
        55-65 ms gaps at the end of a 10,000-recipient campaign had this read (5,000 rows)
        on the GUI thread's stack (bench/_stallprobe.py)."""
        rows: list[dict[str, Any]] = []
        async for r in self.campaigns.recipients(campaign_id, limit=limit):
            rows.append(r)
            if len(rows) % YIELD_ROWS == 0:
                await asyncio.sleep(0)
        return rows

    async def ab_results(self, campaign_id: int) -> dict[str, Any] | None:
        """An A/B test's settings and recorded decision (``ab_campaigns.summary``), the parent's
        state and, while undecided, each variant's counts so far (``AbTests.results``: counts
        only; the test itself runs once, at the decision). None when it is not a test."""
        summary = await ab_campaigns.summary(self.app.db, campaign_id)
        if summary is None:
            return None
        out = dict(summary)
        out["state"] = (await self.campaigns.get(campaign_id)).state
        out["so_far"] = None
        if summary["started_at"] and not summary["decided_at"]:
            res = await ab_campaigns.AbTests(self.app.db).results(campaign_id, now=now())
            out["so_far"] = [asdict(v) for v in res.variants]
        return out

    async def decide_ab(self, campaign_id: int, *, pick: int | None = None) -> list[str]:
        """`botdesk campaign decide ID [--pick N]`: the same call, its lines for the window."""
        out = await ab_campaigns.AbTests(self.app.db).decide(campaign_id, now=now(), pick=pick)
        return ab_campaigns.describe(out)

    async def export_report(self, campaign_id: int, path: Path) -> int:
        n = 0
        with path.open("w", newline="", encoding="utf-8") as fh:
            w: Any = None
            async for r in self.campaigns.recipients(campaign_id):
                if w is None:
                    w = csv.DictWriter(fh, fieldnames=list(r))
                    w.writeheader()
                w.writerow(r)
                n += 1
        return n

    async def resend_uncertain(self, campaign_id: int) -> int:
        return await self.campaigns.resend_uncertain(campaign_id, now=now())

    # -- sequences (drip) ------------------------------------------------------------------

    async def sequences(self, bot: str) -> list[dict[str, Any]]:
        """The bot's sequences, each as `botdesk sequence stats` counts it (``Sequences.stats``)
        with its trigger, version and steps (`sequence show`)."""
        seqs = Sequences(self.app.db)
        out = []
        for info in await seqs.list(bot=bot):
            st = await seqs.stats(str(info.id))
            st["trigger"] = info.definition.trigger.describe()
            st["version"] = info.version
            st["definition"] = info.as_dict()
            out.append(st)
        return out

    async def check_sequence_file(
        self, path: Path, bot: str
    ) -> tuple[list[str], SequenceInfo | None]:
        """The file's problems (`sequence create`'s lines; empty when valid) and the bot's
        sequence of the file's name, which loading it would replace (`--update`)."""
        try:
            definition, _ = read_sequence(path)
        except SequenceFileError as exc:
            return exc.problems, None
        for info in await Sequences(self.app.db).list(bot=bot):
            if info.name == definition.name:
                return [], info
        return [], None

    async def load_sequence(
        self, path: Path, bot: str, *, update: bool
    ) -> tuple[SequenceInfo, bool]:
        """`botdesk sequence create FILE --bot BOT [--update]`: stored; True if new."""
        return await Sequences(self.app.db).create(
            path, await self.bot(bot), now=now(), update_existing=update
        )

    async def sequence_state(self, sequence_id: int, state: str) -> SequenceInfo:
        """`botdesk sequence pause|resume`: ``paused`` or ``active``."""
        if state not in ("paused", "active"):
            raise NotFoundError(f"no sequence state {state!r}")
        return await Sequences(self.app.db).set_state(str(sequence_id), state, bot=None, now=now())

    # -- edit and recall of a sent campaign ----------------------------------------------

    async def action_text(self, campaign_id: int) -> tuple[str, str]:
        """The text an edit starts from, and the campaign's parse mode."""
        info = await self.campaigns.get(campaign_id)
        return await self.actions.current_text(campaign_id), info.parse_mode

    async def plan_campaign_action(self, spec: ActionSpec) -> ActionPlan:
        return await self.actions.plan(spec)

    async def start_campaign_action(self, spec: ActionSpec) -> int:
        """Store the action; the console's runtime performs it when it serves the bot,
        otherwise it is performed here before this returns."""
        from botdesk.runtime.action_run import run_action

        aid = await self.actions.start(spec, now=now())
        if self.runtime is None:
            await run_action(self.app, aid)
        return aid

    async def campaign_actions(self, campaign_id: int) -> list[dict[str, Any]]:
        return await self.actions.for_campaign(campaign_id)

    # -- inbox -----------------------------------------------------------------------------

    async def conversations(self, *, needs_human: bool = False) -> list[inbox.ConversationView]:
        return await inbox.list_conversations(self.app.db, needs_human=needs_human, limit=200)

    async def messages(self, bot: str, chat_id: int) -> list[inbox.MessageView]:
        return await inbox.show(self.app.db, bot=bot, chat_id=chat_id, limit=200)

    async def reply(self, bot: str, chat_id: int, text: str) -> int:
        return await inbox.enqueue_reply(self.app.db, bot=bot, chat_id=chat_id, text=text)

    async def take_over(self, bot: str, chat_id: int) -> None:
        await inbox.take_over(self.app.db, bot=bot, chat_id=chat_id)

    async def release(self, bot: str, chat_id: int) -> None:
        await inbox.release(self.app.db, bot=bot, chat_id=chat_id)

    # -- knowledge base --------------------------------------------------------------------

    async def kb_entries(self, bot: str | None) -> list[Any]:
        return await knowledge_base.entries(self.app.db, bot=bot)

    async def kb_import(self, path: Path, bot: str | None) -> knowledge_base.ImportResult:
        return await knowledge_base.import_file(self.app.db, path, bot=bot, now=now())

    async def kb_save(self, bot: str | None, **fields: Any) -> bool:
        return await knowledge_base.save_entry(self.app.db, bot=bot, now=now(), **fields)

    async def kb_remove(self, bot: str | None, key: str) -> None:
        await knowledge_base.remove(self.app.db, bot=bot, key=key)

    async def kb_ask(self, bot: str, question: str, language: str | None = None) -> Any:
        """As `botdesk kb ask`: the configured assistant, its sources and its confidence."""
        from botdesk.runtime.assistant_port import build_assistant_port

        await self.bot(bot)
        if self._port is None:
            self._port = await build_assistant_port(self.app)
        await self._port.index.ensure(bot)
        return await self._port.service.respond(
            bot=bot, chat_id=0, text=question, language=language, history=[]
        )

    # -- settings --------------------------------------------------------------------------

    def save_settings(self, changes: dict[str, Any]) -> None:
        """Validated as a whole, then written to botdesk.toml (takes effect on restart)."""
        self.app.settings = save_settings(self.app.home, changes)

    def set_secret(self, name: str, value: str) -> None:
        self.app.secrets.set(name, value)

    def secret_names(self) -> list[str]:
        return sorted(self.app.secrets.names())
