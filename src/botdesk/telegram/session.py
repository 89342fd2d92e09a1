"""The aiohttp session botdesk gives aiogram: separate connect and read timeouts, HTTP status kept.

aiogram's ``AiohttpSession`` has one total ``timeout``. A total timeout cannot tell "could not
connect" (safe to retry) from "sent, then no answer" (must not be retried), and it also bounds
the upload time of large files. This session uses aiohttp's ``sock_connect`` and ``sock_read``
instead, so aiohttp raises ``ConnectionTimeoutError`` or ``SocketTimeoutError`` respectively.
It also records the HTTP status on the aiogram exception (``botdesk_http_status``) and turns a
5xx with a body that is not JSON (a proxy's error page) into ``TelegramServerError``.

A request without files is url-encoded here directly (the same bytes aiogram's ``FormData``
sends): ``FormData`` also builds a multipart writer with a random boundary for every request,
a third of the form's cost, on the path every campaign message takes. ``message_result`` is
that path's way back: the sent message's JSON, without aiogram's model of it (see there).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.methods.base import TelegramType
from aiohttp import ClientError, ClientTimeout, FormData
from aiohttp.payload import BytesPayload

if TYPE_CHECKING:
    from aiogram.client.bot import Bot
    from aiogram.methods import TelegramMethod
    from aiogram.methods.base import Response
    from aiogram.types import InputFile, Message

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
HTTP_STATUS_ATTR = "botdesk_http_status"
_SERVER_ERROR = 500


class SplitTimeoutSession(AiohttpSession):
    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        # ``timeout`` stays a number: aiogram's polling adds it to the long-poll timeout.
        super().__init__(timeout=connect_timeout + read_timeout, **kwargs)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def client_timeout(self, request_timeout: float | None) -> ClientTimeout:
        if request_timeout is None:
            return ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            )
        # An explicit per-request timeout (long polling) bounds the read; connecting keeps its own.
        return ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=float(request_timeout)
        )

    def build_form_data(  # type: ignore[override]
        self, bot: Bot, method: TelegramMethod[TelegramType]
    ) -> FormData | BytesPayload:
        files: dict[str, InputFile] = {}
        fields: list[tuple[str, str]] = []
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:  # aiogram leaves out empty values too
                fields.append((key, prepared))
        if not files:
            body = urlencode(fields, doseq=True, encoding="utf-8").encode()
            return BytesPayload(body, content_type="application/x-www-form-urlencoded")
        form = FormData(quote_fields=False)
        for key, prepared in fields:
            form.add_field(key, prepared)
        for key, file in files.items():
            form.add_field(key, file.read(bot), filename=file.filename or key)
        return form

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        status, raw = await self._post(bot, method, timeout, None)
        return cast(TelegramType, self._checked(bot, method, status, raw).result)

    async def message_result(
        self, bot: Bot, method: TelegramMethod[Message], *, form: BytesPayload | None = None
    ) -> dict[str, Any]:
        """Call a method that returns a ``Message``; its answer's ``result``, as JSON.

        botdesk reads two things of the message a send returns (its id and a file_id), and
        building aiogram's ``Message`` model of it (with its chat and sender) cost about a
        sixth of a campaign message's CPU (about 80 of 480 us, measured alternating). A
        success answer of the expected shape (``ok``, a ``result`` object with an integer
        ``message_id``) is returned as parsed; any other answer goes through aiogram's
        ``check_response`` as in ``make_request``, so error answers raise the same exceptions
        and a malformed one the same ``ClientDecodeError``.

        ``form``: the request's body, built beforehand (see ``gateway.Broadcast``); ``method``
        then only names the call and types an error answer.
        """
        status, raw = await self._post(bot, method, None, form)
        data = self._ok_answer(status, raw)
        if data is not None:
            result = data.get("result")
            if isinstance(result, dict) and type(result.get("message_id")) is int:
                return result
        message = self._checked(bot, method, status, raw).result
        if message is None:  # ``{"ok": true}`` alone passes aiogram's model, but says nothing
            err = ClientDecodeError("a successful answer without a result", ValueError(), raw)
            setattr(err, HTTP_STATUS_ATTR, status)
            raise err
        # Only an answer aiogram's model accepts and the check above did not (a numeric string
        # for message_id, say) gets here; the model's own reading of it is returned.
        return message.model_dump(mode="json", by_alias=True)

    async def messages_result(self, bot: Bot, method: TelegramMethod[Any]) -> list[dict[str, Any]]:
        """``message_result`` for a method that returns a list of messages (sendMediaGroup):
        the list as JSON when every item has an integer ``message_id``; an error answer raises
        aiogram's exception (``check_response``), and a success of another shape is an
        unreadable answer (``ClientDecodeError``): the messages may exist."""
        status, raw = await self._post(bot, method, None, None)
        data = self._ok_answer(status, raw)
        if data is None:
            self._checked(bot, method, status, raw)
        else:
            result = data.get("result")
            if (
                isinstance(result, list)
                and result
                and all(isinstance(m, dict) and type(m.get("message_id")) is int for m in result)
            ):
                return result
        err = ClientDecodeError("a successful answer of an unexpected shape", ValueError(), raw)
        setattr(err, HTTP_STATUS_ATTR, status)
        raise err

    def _ok_answer(self, status: int, raw: str) -> dict[str, Any] | None:
        """A 2xx answer whose JSON says ``ok: true``, parsed; None for anything else."""
        if not HTTPStatus.OK <= status <= HTTPStatus.IM_USED:
            return None
        try:
            data = self.json_loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("ok") is True else None

    async def acknowledged(self, bot: Bot, method: TelegramMethod[Any]) -> None:
        """Call a method whose answer botdesk only needs as "done" (an edit, a deletion).

        A success answer (``ok`` with a ``result``) is not read further. Any other answer goes
        through aiogram's ``check_response``, typed as deleteMessage's ``bool`` answer: an
        edit's own answer type (``Message | bool``) is a model the lean import
        (``fast_import``) builds only on first use, and an error answer carries no result
        to type anyway. The exceptions are the same (``TelegramBadRequest``, ...).
        """
        from aiogram.methods import DeleteMessage

        status, raw = await self._post(bot, method, None, None)
        if HTTPStatus.OK <= status <= HTTPStatus.IM_USED:
            try:
                data = self.json_loads(raw)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("ok") is True and "result" in data:
                return
        typed = method
        if not isinstance(method, DeleteMessage):
            typed = DeleteMessage(
                chat_id=getattr(method, "chat_id", 0) or 0,
                message_id=getattr(method, "message_id", 0) or 0,
            )
        self._checked(bot, typed, status, raw)
        err = ClientDecodeError("a successful answer without a result", ValueError(), raw)
        setattr(err, HTTP_STATUS_ATTR, status)
        raise err

    async def _post(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None,  # noqa: ASYNC109 (aiogram's meaning: the read timeout)
        form: FormData | BytesPayload | None = None,
    ) -> tuple[int, str]:
        """Send the request; the HTTP status and the body. Network failures raise aiogram's
        ``TelegramNetworkError``, with aiohttp's exception as the cause."""
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        if form is None:
            form = self.build_form_data(bot=bot, method=method)
        try:
            async with session.post(url, data=form, timeout=self.client_timeout(timeout)) as resp:
                return resp.status, await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e

    def _checked(
        self, bot: Bot, method: TelegramMethod[TelegramType], status: int, raw: str
    ) -> Response[TelegramType]:
        """aiogram's ``check_response``, with the HTTP status kept on the exception and a 5xx
        whose body is not JSON (a proxy's error page) reported as a server error."""
        try:
            return self.check_response(bot=bot, method=method, status_code=status, content=raw)
        except ClientDecodeError as e:
            if status >= _SERVER_ERROR:
                err = TelegramServerError(method=method, message=f"HTTP {status}")
                setattr(err, HTTP_STATUS_ATTR, status)
                raise err from e
            setattr(e, HTTP_STATUS_ATTR, status)
            raise
        except TelegramAPIError as e:
            setattr(e, HTTP_STATUS_ATTR, status)
            raise
