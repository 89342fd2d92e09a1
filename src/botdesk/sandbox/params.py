"""Request parameters as Telegram reads them: typed JSON or strings from forms, plus files.

Owns the coercion rules (ints from strings, "true"/"false", JSON-in-a-field) and the
validation of reply markup, with Telegram's error wording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import CHAT_NOT_FOUND, ApiError, bad_request

_TRUE = frozenset({"true", "True", "1", "yes", "on"})
_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


class Params:
    __slots__ = ("files", "values")

    def __init__(self, values: dict[str, Any], files: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.files = files or {}

    def get(self, name: str) -> Any:
        value = self.values.get(name)
        return None if value == "" else value

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            value = str(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(f"{name} must be encoded in UTF-8") from None
        return value

    def integer(self, name: str, *, required: str | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            if required:
                raise bad_request(required)
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.get(name)
        return value is True or (isinstance(value, str) and value in _TRUE) or value == 1

    def json(self, name: str, what: str) -> Any:
        value = self.get(name)
        if value is None or not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {what} JSON object") from None

    def chat_id(self, name: str = "chat_id") -> int:
        value = self.get(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool):
            raise bad_request(CHAT_NOT_FOUND)
        try:
            return int(value)
        except (TypeError, ValueError):
            # "@username" addresses public chats; the sandbox has none.
            raise bad_request(CHAT_NOT_FOUND) from None


def validate_markup(markup: Any) -> dict[str, Any] | None:
    """Check reply_markup like Telegram; return it when it is an inline keyboard."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                _inline_button(button)
        return {"inline_keyboard": rows}
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                if isinstance(button, str):
                    continue
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad_request(
                        "can't parse keyboard button: KeyboardButton must be a String or an Object"
                    )
        return None
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return None
    raise bad_request("can't parse reply keyboard markup JSON object")


def _inline_button(button: Any) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad_request(prefix + "InlineKeyboardButton must be an Object")
    if not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request(prefix + 'Field "text" must be of type String')
    actions = [a for a in _INLINE_ACTIONS if a in button]
    if not actions:
        raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad_request(prefix + 'Can\'t find field "text"')  # Telegram's odd wording
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64
    ):
        raise bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if "url" in button and (
        not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://"))
    ):
        raise bad_request("BUTTON_URL_INVALID")


def raise_if(condition: bool, error: ApiError) -> None:
    if condition:
        raise error
