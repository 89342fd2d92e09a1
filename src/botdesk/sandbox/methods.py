"""The Bot API methods that answer immediately (everything but getUpdates and webhooks).

Each method takes the calling bot and its ``Params`` and returns the ``result`` value or
raises ``ApiError``. Checks run in the order Telegram's are observed to: parameters, then
content (parsing, lengths, markup), then the chat, then the rate limiter, so a refused
message is never recorded and never consumes a rate token.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Callable
from typing import Any

from .entities import EntityParseError, parse, utf16_len
from .errors import CHAT_NOT_FOUND, ApiError, bad_request, forbidden, too_many_requests
from .limits import Limiter
from .params import Params, Upload, validate_markup
from .stats import Stats
from .world import DEACTIVATED, DELETED, Bot, World

MAX_TEXT = 4096
MAX_CAPTION = 1024
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
})  # fmt: skip
SEND_METHODS = frozenset({
    "sendmessage", "sendphoto", "senddocument", "sendmediagroup", "copymessage",
    "forwardmessage", "sendvideo", "sendanimation", "sendaudio", "sendvoice",
})  # fmt: skip
FILE_KINDS = ("photo", "document", "video", "animation", "audio", "voice")
_CONTENT = ("text", "entities", *FILE_KINDS, "caption", "caption_entities")
_FILE_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "animation": "CgACAgIAAxkBAA",
    "audio": "CQACAgIAAxkBAA",
    "voice": "AwACAgIAAxkBAA",
}
# sendMediaGroup: photos and videos mix; documents and audio files only with their own kind.
_ALBUM_KINDS = ("photo", "video", "document", "audio")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
NO_STARS = "not enough Telegram Stars to send paid broadcast messages"
# "A message can only be deleted if it was sent less than 48 hours ago" (Bot API, deleteMessage).
DELETE_WINDOW_S = 48 * 3600
CANT_DELETE_OLD = "message can't be deleted for everyone"
MAX_DELETE_BATCH = 100


def required(name: str) -> ApiError:
    return bad_request(f'parameter "{name}" is required')


class BotApi:
    """Synchronous Bot API methods over one ``World``."""

    def __init__(self, world: World, limiter: Limiter, stats: Stats) -> None:
        self.world = world
        self.limiter = limiter
        self.stats = stats
        self._file_seq = 0
        self.table: dict[str, Callable[[Bot, Params], Any]] = {
            name[len("m_") :].lower(): getattr(self, name)
            for name in dir(self)
            if name.startswith("m_")
        }

    # -- shared steps -------------------------------------------------------------------

    def target(self, bot: Bot, chat_id: int) -> tuple[dict[str, Any], bool]:
        """The chat's JSON and whether it is a group, or the error Telegram answers."""
        if chat_id < 0:
            group = self.world.groups.get(chat_id)
            if group is None or bot.info.id not in group.bots:
                raise bad_request(CHAT_NOT_FOUND)
            return group.chat_json(), True
        user = self.world.users.get(chat_id)
        if user is None or user.state == DELETED:
            raise bad_request(CHAT_NOT_FOUND)
        if user.state == DEACTIVATED:
            raise forbidden("user is deactivated")
        if chat_id in bot.blocked:
            raise forbidden("bot was blocked by the user")
        if chat_id not in bot.started:
            raise forbidden("bot can't initiate conversation with a user")
        return user.chat_json(), False

    def admit(self, bot: Bot, chat_id: int, group: bool, paid: bool, cost: int = 1) -> bool:
        decision = self.limiter.check(
            bot.info.id, chat_id, group=group, paid=paid, stars_tenths=bot.star_tenths, cost=cost
        )
        self.refuse_on_429(bot, decision.retry_after)
        if decision.no_stars:
            raise bad_request(NO_STARS)
        if decision.paid:
            bot.star_tenths -= cost
            self.stats.stars_tenths += cost
            counter = self.stats.bot(bot.info.username)
            counter["paid"] += cost
            counter["stars_tenths"] += cost
        return decision.paid

    def admit_call(self, bot: Bot) -> None:
        """An edit, a deletion or getChat: the bot's own limit only (``Limiter.check_call``)."""
        self.refuse_on_429(bot, self.limiter.check_call(bot.info.id).retry_after)

    def refuse_on_429(self, bot: Bot, retry_after: int) -> None:
        if retry_after:
            self.stats.rate_limited += 1
            self.stats.bot(bot.info.username)["rate_limited"] += 1
            raise too_many_requests(retry_after)

    def record(
        self,
        bot: Bot,
        chat_id: int,
        chat: dict[str, Any],
        method: str,
        fields: dict[str, Any],
        paid: bool,
        params: Params,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": 0,
            "from": bot.user_json(),
            "chat": chat,
            "date": self.world.now(),
        }
        message.update(fields)
        if params.flag("protect_content"):
            message["has_protected_content"] = True
        self.world.store(bot, chat_id, message)
        entry = {
            "bot": bot.info.username,
            "chat_id": chat_id,
            "message_id": message["message_id"],
            "date": message["date"],
            "method": method,
            "text": fields.get("text"),
            "caption": fields.get("caption"),
            "entities": fields.get("entities") or fields.get("caption_entities") or [],
            "reply_markup": fields.get("reply_markup"),
            "media_group_id": fields.get("media_group_id"),
            "disable_notification": params.flag("disable_notification"),
            "protect_content": params.flag("protect_content"),
            "link_preview_options": fields.get("link_preview_options"),
            "media": next((k for k in FILE_KINDS if k in fields), None),
            "file_id": _file_id(fields),
            "paid": paid,
            "edited": False,
            "deleted": False,
        }
        self.world.outgoing.append(entry)
        self.world.log(bot, chat_id).records[message["message_id"]] = entry
        self.stats.accepted += 1
        self.stats.bot(bot.info.username)["accepted"] += 1
        return message

    def formatted(
        self, p: Params, raw: str, mode_key: str, entities_key: str
    ) -> tuple[str, list[dict[str, Any]]]:
        mode = p.text(mode_key)
        if mode:
            if mode.lower() not in ("html", "markdown", "markdownv2"):
                raise bad_request("unsupported parse_mode")
            try:
                return parse(raw, mode)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        entities = p.json(entities_key, "entities")
        if entities is None:
            return raw, []
        size = utf16_len(raw)
        if not isinstance(entities, list) or not all(
            isinstance(e, dict)
            and isinstance(e.get("type"), str)
            and isinstance(e.get("offset"), int)
            and isinstance(e.get("length"), int)
            and 0 <= e["offset"] <= e["offset"] + e["length"] <= size
            for e in entities
        ):
            raise bad_request("can't parse entities JSON object")
        return raw, entities

    def caption(self, p: Params) -> dict[str, Any]:
        raw = p.text("caption")
        if raw is None:
            return {}
        text, entities = self.formatted(p, raw, "parse_mode", "caption_entities")
        if utf16_len(text) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        fields: dict[str, Any] = {"caption": text} if text else {}
        if entities:
            fields["caption_entities"] = entities
        return fields

    def reply_to(self, bot: Bot, chat_id: int, p: Params) -> dict[str, Any]:
        params = p.json("reply_parameters", "reply parameters")
        target_id: Any = None
        allow_missing = p.flag("allow_sending_without_reply")
        if isinstance(params, dict):
            target_id = params.get("message_id")
            allow_missing = allow_missing or bool(params.get("allow_sending_without_reply"))
        elif params is not None:
            raise bad_request("can't parse reply parameters JSON object")
        else:
            target_id = p.integer("reply_to_message_id")
        if target_id is None:
            return {}
        replied = self.world.log(bot, chat_id).messages.get(int(target_id))
        if replied is None:
            if allow_missing:
                return {}
            raise bad_request("message to be replied not found")
        return {"reply_to_message": {k: v for k, v in replied.items() if k != "reply_to_message"}}

    def message_text(self, p: Params) -> tuple[str, list[dict[str, Any]]]:
        """The ``text`` of sendMessage and editMessageText, parsed, with Telegram's checks."""
        raw = p.text("text")
        if raw is None:
            raise bad_request("message text is empty")
        text, entities = self.formatted(p, raw, "parse_mode", "entities")
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        return text, entities

    def markup(self, p: Params) -> dict[str, Any]:
        inline = validate_markup(p.json("reply_markup", "reply keyboard markup"))
        return {"reply_markup": inline} if inline else {}

    # -- files --------------------------------------------------------------------------

    def file(self, p: Params, field: str, value: Any, kind: str) -> dict[str, Any]:
        upload = p.files.get(field)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = p.files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request("can't parse InputMedia: media not found")
        if upload is not None:
            return self.new_file(upload, kind)
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {kind} in the request")
        if value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")  # the sandbox never fetches
        known = self.world.files.get(value)
        if known is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if known["_kind"] != kind:
            raise bad_request("type of file mismatch")
        return known

    def new_file(self, upload: Upload, kind: str) -> dict[str, Any]:
        if not upload.data:
            raise bad_request("file must be non-empty")
        self._file_seq += 1
        seq = f"{self._file_seq:012d}"
        prefix = _FILE_PREFIX[kind]
        info: dict[str, Any] = {
            "_kind": kind,
            "file_id": f"{prefix}{seq}sbx{len(upload.data):x}",
            "file_unique_id": f"AQAD{seq}",
            "file_size": len(upload.data),
        }
        if kind == "photo":
            info["width"], info["height"] = _image_size(upload.data)
        elif kind in ("video", "animation", "audio", "voice"):
            # The sandbox does not decode media: nominal size and duration (docs/sandbox.md).
            if kind in ("video", "animation"):
                info["width"], info["height"] = 640, 360
            info["duration"] = 1
            info["mime_type"] = upload.content_type or "application/octet-stream"
            if kind in ("video", "animation", "audio"):
                info["file_name"] = upload.filename
        else:
            info["file_name"] = upload.filename
            info["mime_type"] = upload.content_type or "application/octet-stream"
        self.world.files[info["file_id"]] = info
        upload_info = {"kind": kind, "file_id": info["file_id"], "size": len(upload.data)}
        self.world.uploads.append(upload_info)
        return info

    @staticmethod
    def media_json(info: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in info.items() if not k.startswith("_")}
        kind = info["_kind"]
        return {"photo": [public]} if kind == "photo" else {kind: public}

    # -- methods ------------------------------------------------------------------------

    def m_getMe(self, bot: Bot, p: Params) -> Any:
        return {
            **bot.user_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def m_logOut(self, bot: Bot, p: Params) -> Any:
        return True

    def m_close(self, bot: Bot, p: Params) -> Any:
        return True

    def m_sendMessage(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        text, entities = self.message_text(p)
        fields: dict[str, Any] = {"text": text}
        if entities:
            fields["entities"] = entities
        fields.update(self.markup(p))
        preview = p.json("link_preview_options", "link preview options")
        if isinstance(preview, dict) and preview:
            fields["link_preview_options"] = preview
        chat, group = self.target(bot, chat_id)
        fields.update(self.reply_to(bot, chat_id, p))
        paid = self.admit(bot, chat_id, group, p.flag("allow_paid_broadcast"))
        return self.record(bot, chat_id, chat, "sendMessage", fields, paid, p)

    def _send_file(self, bot: Bot, p: Params, kind: str, method: str) -> Any:
        chat_id = p.chat_id()
        info = self.file(p, kind, p.get(kind), kind)
        fields = self.media_json(info)
        fields.update(self.caption(p))
        fields.update(self.markup(p))
        chat, group = self.target(bot, chat_id)
        fields.update(self.reply_to(bot, chat_id, p))
        paid = self.admit(bot, chat_id, group, p.flag("allow_paid_broadcast"))
        return self.record(bot, chat_id, chat, method, fields, paid, p)

    def m_sendPhoto(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "photo", "sendPhoto")

    def m_sendDocument(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "document", "sendDocument")

    def m_sendVideo(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "video", "sendVideo")

    def m_sendAnimation(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "animation", "sendAnimation")

    def m_sendAudio(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "audio", "sendAudio")

    def m_sendVoice(self, bot: Bot, p: Params) -> Any:
        return self._send_file(bot, p, "voice", "sendVoice")

    def m_sendMediaGroup(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        media = p.json("media", "media")
        if media is None:
            raise bad_request("media to send are not specified")
        if not isinstance(media, list):
            raise bad_request("can't parse media JSON object")
        if not 2 <= len(media) <= 10:
            raise bad_request("media group must contain 2-10 items")
        items = []
        for item in media:
            if not isinstance(item, dict) or "media" not in item:
                raise bad_request("can't parse InputMedia: media not found")
            kind = item.get("type")
            if kind not in _ALBUM_KINDS:
                raise bad_request(f'can\'t parse InputMedia: unsupported media type "{kind}"')
            fields = self.media_json(self.file(p, "", item["media"], kind))
            sub = Params({k: v for k, v in item.items() if k != "media"})
            fields.update(self.caption(sub))
            items.append(fields)
        kinds = {next(k for k in _ALBUM_KINDS if k in f) for f in items}
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            if "audio" in kinds:
                raise bad_request("audio can't be mixed with other media types")
            raise bad_request("documents can't be mixed with other media types")
        chat, group = self.target(bot, chat_id)
        reply = self.reply_to(bot, chat_id, p)
        # Delivered as a unit, but each item counts as a message against the bot's limits.
        paid = self.admit(bot, chat_id, group, p.flag("allow_paid_broadcast"), cost=len(items))
        group_id = f"{bot.info.id}{self.world.log(bot, chat_id).next_id:06d}"
        sent = []
        for fields in items:
            fields["media_group_id"] = group_id
            fields.update(reply)
            sent.append(self.record(bot, chat_id, chat, "sendMediaGroup", fields, paid, p))
        return sent

    def _source(self, bot: Bot, p: Params, missing: str) -> dict[str, Any]:
        from_chat = p.chat_id("from_chat_id")
        message_id = p.integer("message_id", required="message identifier is not specified")
        if from_chat < 0:
            if from_chat not in self.world.groups:
                raise bad_request(CHAT_NOT_FOUND)
        elif from_chat not in self.world.users:
            raise bad_request(CHAT_NOT_FOUND)
        source = self.world.log(bot, from_chat).messages.get(message_id or 0)
        if source is None:
            raise bad_request(missing)
        return source

    def m_copyMessage(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        source = self._source(bot, p, "message to copy not found")
        fields = {k: source[k] for k in _CONTENT if k in source}
        if p.get("caption") is not None and any(k in fields for k in FILE_KINDS):
            fields.pop("caption", None)
            fields.pop("caption_entities", None)
            fields.update(self.caption(p))
        # The copy keeps the source's inline keyboard unless reply_markup replaces it.
        markup = self.markup(p)
        if not markup and "reply_markup" in source:
            markup = {"reply_markup": source["reply_markup"]}
        fields.update(markup)
        chat, group = self.target(bot, chat_id)
        fields.update(self.reply_to(bot, chat_id, p))
        paid = self.admit(bot, chat_id, group, p.flag("allow_paid_broadcast"))
        message = self.record(bot, chat_id, chat, "copyMessage", fields, paid, p)
        return {"message_id": message["message_id"]}

    def m_forwardMessage(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        source = self._source(bot, p, "message to forward not found")
        fields = {k: source[k] for k in _CONTENT if k in source}
        sender = source.get("from")
        if sender is not None:
            fields["forward_origin"] = {
                "type": "user",
                "sender_user": sender,
                "date": source["date"],
            }
        chat, group = self.target(bot, chat_id)
        paid = self.admit(bot, chat_id, group, p.flag("allow_paid_broadcast"))
        return self.record(bot, chat_id, chat, "forwardMessage", fields, paid, p)

    def editable(self, bot: Bot, p: Params) -> tuple[int, int, dict[str, Any] | None]:
        """The chat, message id and message an edit names, with Telegram's refusals."""
        if p.get("inline_message_id") is not None:
            raise bad_request("MESSAGE_ID_INVALID")  # the sandbox has no inline messages
        chat_id = p.chat_id()
        message_id = p.integer("message_id", required="message identifier is not specified")
        mid = message_id or 0
        return chat_id, mid, self.world.log(bot, chat_id).messages.get(mid)

    def count_call(self, bot: Bot, chat_id: int, message_id: int, kind: str) -> None:
        """Every edit or delete call naming a message the bot sent, refused or not: tests
        count them to prove nothing was edited or deleted twice."""
        record = self.world.log(bot, chat_id).records.get(message_id)
        if record is not None:
            record[kind] = record.get(kind, 0) + 1

    def apply_edit(
        self,
        bot: Bot,
        chat_id: int,
        message_id: int,
        message: dict[str, Any] | None,
        content: dict[str, Any],
        markup: dict[str, Any],
    ) -> dict[str, Any]:
        """Replace ``content`` (text/entities or caption/caption_entities; empty for a
        markup-only edit) and the keyboard, as Telegram does, or refuse."""
        self.target(bot, chat_id)
        self.admit_call(bot)  # a call refused with 429 did nothing: not counted below
        self.count_call(bot, chat_id, message_id, "edit_calls")
        if message is None:
            raise bad_request("message to edit not found")
        if message.get("from", {}).get("id") != bot.info.id:
            raise bad_request("message can't be edited")
        keys = tuple(content) if content else ()
        if "text" in keys and "text" not in message:
            raise bad_request("there is no text in the message to edit")
        if "caption" in keys and not any(k in message for k in FILE_KINDS):
            raise bad_request("there is no caption in the message to edit")
        entity_key = "entities" if "text" in keys else "caption_entities"
        same_content = all(message.get(k) == v for k, v in content.items() if k != entity_key)
        if content:
            same_content = same_content and message.get(entity_key, []) == content.get(
                entity_key, []
            )
        if same_content and message.get("reply_markup") == markup.get("reply_markup"):
            raise bad_request(_NOT_MODIFIED)
        if content:
            main = "text" if "text" in keys else "caption"
            message.pop(main, None)
            message.pop(entity_key, None)
            message.update({k: v for k, v in content.items() if v})
        message.pop("reply_markup", None)  # an edit without reply_markup drops the keyboard
        message.update(markup)
        message["edit_date"] = self.world.now()
        record = self.world.log(bot, chat_id).records.get(message_id)
        if record is not None:
            if "text" in keys:
                record.update(text=content["text"], entities=content.get("entities", []))
            elif "caption" in keys:
                record.update(
                    caption=content.get("caption"),
                    entities=content.get("caption_entities", []),
                )
            record["reply_markup"] = markup.get("reply_markup")
            record["edited"] = True
            record["edits"] = record.get("edits", 0) + 1
        return message

    def m_editMessageText(self, bot: Bot, p: Params) -> Any:
        chat_id, message_id, message = self.editable(bot, p)
        text, entities = self.message_text(p)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return self.apply_edit(bot, chat_id, message_id, message, content, self.markup(p))

    def m_editMessageCaption(self, bot: Bot, p: Params) -> Any:
        chat_id, message_id, message = self.editable(bot, p)
        fields = self.caption(p)  # an absent caption removes it, as Telegram does
        content: dict[str, Any] = {"caption": fields.get("caption", "")}
        if fields.get("caption_entities"):
            content["caption_entities"] = fields["caption_entities"]
        return self.apply_edit(bot, chat_id, message_id, message, content, self.markup(p))

    def m_editMessageReplyMarkup(self, bot: Bot, p: Params) -> Any:
        chat_id, message_id, message = self.editable(bot, p)
        return self.apply_edit(bot, chat_id, message_id, message, {}, self.markup(p))

    def delete_one(self, bot: Bot, chat_id: int, message_id: int) -> None:
        log = self.world.log(bot, chat_id)
        self.count_call(bot, chat_id, message_id, "delete_calls")
        message = log.messages.get(message_id)
        if message is None:
            raise bad_request("message to delete not found")
        if message.get("from", {}).get("id") == bot.info.id and (
            self.world.now() - int(message.get("date", 0)) >= DELETE_WINDOW_S
        ):
            raise bad_request(CANT_DELETE_OLD)
        del log.messages[message_id]
        record = log.records.get(message_id)
        if record is not None:
            record["deleted"] = True

    def m_deleteMessage(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        message_id = p.integer("message_id", required="message identifier is not specified")
        self.admit_call(bot)
        self.delete_one(bot, chat_id, message_id or 0)
        return True

    def m_deleteMessages(self, bot: Bot, p: Params) -> Any:
        """Deletes what it can and answers True: messages that can't be found or deleted are
        skipped (Bot API 7.0). An empty or over-long list is refused."""
        chat_id = p.chat_id()
        ids = p.json("message_ids", "message identifiers")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise bad_request("message identifiers are not specified")
        if not 1 <= len(ids) <= MAX_DELETE_BATCH:
            raise bad_request("too many messages to delete" if ids else "MESSAGE_IDS_EMPTY")
        self.admit_call(bot)  # one request, whatever the number of messages
        for message_id in ids:
            with contextlib.suppress(ApiError):
                self.delete_one(bot, chat_id, message_id)
        return True

    def m_answerCallbackQuery(self, bot: Bot, p: Params) -> Any:
        query_id = p.text("callback_query_id")
        text = p.text("text") or ""
        if len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        if query_id is None or bot.open_queries.pop(query_id, None) is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        bot.answered[query_id] = text
        return True

    def m_sendChatAction(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        action = p.text("action")
        if action is None:
            raise required("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.target(bot, chat_id)
        return True

    @staticmethod
    def _commands_key(p: Params) -> tuple[str, str]:
        scope = p.json("scope", "BotCommandScope")
        key = json.dumps(scope, sort_keys=True) if isinstance(scope, dict) else "default"
        if key == json.dumps({"type": "default"}):
            key = "default"
        return key, p.text("language_code") or ""

    def m_setMyCommands(self, bot: Bot, p: Params) -> Any:
        commands = p.json("commands", "commands")
        if commands is None:
            raise required("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        clean = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            name = item.get("command")
            about = item.get("description")
            if not isinstance(name, str) or not _is_command(name.lstrip("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(about, str) or not 1 <= len(about) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name.lstrip("/"), "description": about})
        bot.commands[self._commands_key(p)] = clean
        return True

    def m_getMyCommands(self, bot: Bot, p: Params) -> Any:
        return bot.commands.get(self._commands_key(p), [])

    def m_deleteMyCommands(self, bot: Bot, p: Params) -> Any:
        bot.commands.pop(self._commands_key(p), None)
        return True

    def m_getChat(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        self.admit_call(bot)
        if chat_id < 0:
            chat, _ = self.target(bot, chat_id)
        else:
            user = self.world.users.get(chat_id)
            known = chat_id in bot.started or chat_id in bot.blocked
            if user is None or user.state == DELETED or not known:
                raise bad_request(CHAT_NOT_FOUND)
            chat = user.chat_json()
        return {
            **chat,
            "accent_color_id": chat_id % 7 if chat_id > 0 else 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def m_getChatMember(self, bot: Bot, p: Params) -> Any:
        chat_id = p.chat_id()
        user_id = p.integer("user_id", required='parameter "user_id" is required')
        if user_id == bot.info.id:
            if chat_id < 0:
                self.target(bot, chat_id)
            return {"status": "member", "user": bot.user_json()}
        user = self.world.users.get(user_id or 0)
        if chat_id < 0:
            self.target(bot, chat_id)
            if user is None:
                raise bad_request("user not found")
            member = user_id in self.world.groups[chat_id].members
            return {"status": "member" if member else "left", "user": user.json()}
        if user is None or user.state == DELETED or chat_id != user_id:
            raise bad_request(CHAT_NOT_FOUND if user_id == chat_id else "user not found")
        return {"status": "member", "user": user.json()}


def _file_id(fields: dict[str, Any]) -> str | None:
    photo = fields.get("photo")
    if isinstance(photo, list) and photo:
        return str(photo[-1].get("file_id"))
    for kind in FILE_KINDS[1:]:
        if isinstance(fields.get(kind), dict):
            return str(fields[kind].get("file_id"))
    return None


def _is_command(name: str) -> bool:
    return 1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)


def _image_size(data: bytes) -> tuple[int, int]:
    # PNG carries its size in the IHDR chunk; other formats get a nominal size (documented).
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 512, 512
