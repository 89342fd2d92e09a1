"""Keyword rules and menus through the sandbox: a rule beats the assistant, a menu press tags,
the command menu is registered with setMyCommands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.e2e.support import eventually, register, running, write_config

from botdesk import inbox, knowledge_base, reply_rules
from botdesk.app import App
from botdesk.bots import BotRegistry
from botdesk.store.models import Subscriber, SubscriberTag
from botdesk.telegram.commands import get_commands
from botdesk.telegram.gateway import bot_session

KB = """## How much does shipping cost?
Standard shipping is 4.95 EUR and free for orders over 60 EUR.
"""

RULES = """rules:
  - name: shipping
    keyword: shipping
    reply:
      text: "<b>Shipping</b>: see our rates page."
      parse_mode: html
      buttons: [{label: Rates, url: "https://example.com/rates"}]
    tags: [asked-shipping]
  - name: interests
    keyword: [interests, menu]
    reply:
      text: What interests you, {first_name}?
      photo: shoe.png
      menu:
        exclusive: true
        answer: "Noted: {label}"
        buttons:
          - {label: Shoes, tag: shoes}
          - {label: Bags, tag: bags}
commands:
  - {command: price, description: Prices}
  - {command: price, description: Preise, language: de}
"""

# A 1x1 PNG: the sandbox accepts the upload as a photo.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001"
    "0d0a2db40000000049454e44ae426082"
)


def sent(sb: Any, chat_id: int) -> list[dict[str, Any]]:
    return sb.messages(bot="shop_bot", chat_id=chat_id)


async def tags_of(app: App, chat_id: int) -> list[str]:
    async with app.db.read() as conn:
        rows = await conn.execute(
            select(SubscriberTag.tag)
            .join(Subscriber, Subscriber.id == SubscriberTag.subscriber_id)
            .where(Subscriber.chat_id == chat_id)
            .order_by(SubscriberTag.tag)
        )
        return list(rows.scalars())


async def test_rule_beats_assistant_menu_tags_commands_registered(
    home: Path, sandbox: Any, tmp_path: Path
) -> None:
    write_config(home)
    from botdesk.app import open_app

    async with open_app(home, configure_logs=False) as app:
        await register(app, sandbox, "shop", "shop_bot")
        rec = await BotRegistry(app.db, app.secrets).get("shop")
        kb = tmp_path / "kb.md"
        kb.write_text(KB)
        await knowledge_base.import_file(app.db, kb, bot="shop", now=datetime.now(UTC))
        user = sandbox.add_users(1)[0]
        async with running(app):
            await sandbox.user_start(user.id, "shop_bot")
            await eventually(lambda: _has(sandbox, user.id, "Welcome"))
            # Without rules the assistant answers from the knowledge base.
            await sandbox.user_send(user.id, "shop_bot", "how much is shipping?")
            await eventually(lambda: _has(sandbox, user.id, "4.95 EUR"))

            # The operator loads rules while serve runs: the next message sees them.
            (tmp_path / "shoe.png").write_bytes(PNG)
            rules_file = tmp_path / "rules.yaml"
            rules_file.write_text(RULES)
            await reply_rules.store(app.db, bot_id=rec.id, path=rules_file, now=datetime.now(UTC))
            before = len(sent(sandbox, user.id))
            await sandbox.user_send(user.id, "shop_bot", "how much is shipping?")
            await eventually(lambda: _has(sandbox, user.id, "see our rates page"))
            answer = sent(sandbox, user.id)[before:]
            assert [m["text"] for m in answer] == ["Shipping: see our rates page."]
            assert answer[0]["entities"][0]["type"] == "bold"
            rows = answer[0]["reply_markup"]["inline_keyboard"]
            assert rows == [[{"text": "Rates", "url": "https://example.com/rates"}]]
            await eventually(lambda: _tagged(app, user.id, ["asked-shipping"]))

            # The exchange is in the inbox, the rule's reply marked as such (the reply is
            # recorded after Telegram accepted it, so wait for its row, not for the tag).
            async def reply_recorded() -> bool:
                last = (await inbox.show(app.db, bot="shop", chat_id=user.id))[-1]
                return (last.meta or {}).get("rule") == "shipping"

            await eventually(reply_recorded)
            msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
            assert msgs[-2].author == "user" and msgs[-2].text == "how much is shipping?"
            assert msgs[-1].text == "<b>Shipping</b>: see our rates page."
            assert (msgs[-1].meta or {}).get("rule") == "shipping"

            # The menu: a photo with [Shoes] [Bags]; each press sets the subscriber's interest.
            await sandbox.user_send(user.id, "shop_bot", "show me the menu")
            await eventually(lambda: _has(sandbox, user.id, "What interests you"))
            menu = [m for m in sent(sandbox, user.id) if (m["caption"] or "").startswith("What")]
            assert menu[0]["method"] == "sendPhoto"
            assert menu[0]["caption"] == f"What interests you, {user.first_name}?"
            (buttons,) = menu[0]["reply_markup"]["inline_keyboard"]
            assert [b["text"] for b in buttons] == ["Shoes", "Bags"]
            assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
            await sandbox.user_press(
                user.id, "shop_bot", menu[0]["message_id"], buttons[0]["callback_data"]
            )
            await eventually(lambda: _tagged(app, user.id, ["asked-shipping", "shoes"]))
            await sandbox.user_press(
                user.id, "shop_bot", menu[0]["message_id"], buttons[1]["callback_data"]
            )
            await eventually(lambda: _tagged(app, user.id, ["asked-shipping", "bags"]))
            # Both presses were answered (the sandbox forgets a query once answered).
            await eventually(lambda: _no_open_queries(sandbox))

            # The command menu, per language, as Telegram's clients would read it.
            async def registered() -> bool:
                async with bot_session(rec_token(app, rec), api_base=sandbox.base_url) as tg:
                    return await get_commands(tg) == [("price", "Prices")] and await get_commands(
                        tg, language="de"
                    ) == [("price", "Preise")]

            await eventually(registered)

            # The operator drops the menu: its old buttons, still on the user's screen, are
            # checked against the current rules on press and tag nobody.
            rules_file.write_text(RULES.split("  - name: interests")[0])
            await reply_rules.store(app.db, bot_id=rec.id, path=rules_file, now=datetime.now(UTC))
            await sandbox.user_send(user.id, "shop_bot", "shipping again")  # a batch: rules v2
            await eventually(lambda: _count(sandbox, user.id, "see our rates page", 2))
            await sandbox.user_press(
                user.id, "shop_bot", menu[0]["message_id"], buttons[0]["callback_data"]
            )

            async def refused() -> bool:
                msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
                return msgs[-1].text == "[menu] (no longer offered)"

            await eventually(refused)
            await eventually(lambda: _no_open_queries(sandbox))  # answered all the same
            assert await tags_of(app, user.id) == ["asked-shipping", "bags"]

            # A human takes the conversation: rules stay silent there, like the assistant.
            await inbox.take_over(app.db, bot="shop", chat_id=user.id)
            await sandbox.user_send(user.id, "shop_bot", "shipping, human?")

            async def recorded() -> bool:
                msgs = await inbox.show(app.db, bot="shop", chat_id=user.id)
                return msgs[-1].text == "shipping, human?"

            await eventually(recorded)
            await sandbox.user_send(user.id, "shop_bot", "/help")  # a later reply, in order
            await eventually(lambda: _has(sandbox, user.id, "Send me a message"))
            assert await _count(sandbox, user.id, "see our rates page", 2)


async def _count(sb: Any, chat_id: int, needle: str, n: int) -> bool:
    return sum(needle in (m["text"] or "") for m in sent(sb, chat_id)) == n


def rec_token(app: App, rec: Any) -> str:
    return BotRegistry(app.db, app.secrets).token(rec)


async def _has(sb: Any, chat_id: int, needle: str) -> bool:
    return any(needle in ((m["text"] or "") + (m["caption"] or "")) for m in sent(sb, chat_id))


async def _tagged(app: App, chat_id: int, expected: list[str]) -> bool:
    return await tags_of(app, chat_id) == expected


async def _no_open_queries(sb: Any) -> bool:
    return not sb.world.bot("shop_bot").open_queries


async def test_cli_apply_registers_the_menu_without_serve(
    app: App, sandbox: Any, home: Path, tmp_path: Path, capsys: Any
) -> None:
    import asyncio

    from botdesk.cli.main import main

    await register(app, sandbox, "shop", "shop_bot")
    rec = await BotRegistry(app.db, app.secrets).get("shop")
    (tmp_path / "shoe.png").write_bytes(PNG)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    args = ["--home", str(home), "rules"]
    assert await asyncio.to_thread(main, [*args, "load", str(rules_file), "--bot", "shop"]) == 0
    async with bot_session(rec_token(app, rec), api_base=sandbox.base_url) as tg:
        assert await get_commands(tg) == []  # loading alone registers nothing
    assert await asyncio.to_thread(main, [*args, "apply", "--bot", "shop"]) == 0
    assert "2 commands registered for shop: default, de" in capsys.readouterr().out
    async with bot_session(rec_token(app, rec), api_base=sandbox.base_url) as tg:
        assert await get_commands(tg) == [("price", "Prices")]
        assert await get_commands(tg, language="de") == [("price", "Preise")]
