"""The aiohttp session botdesk gives aiogram: separate connect and read timeouts, HTTP status kept.

aiogram's ``AiohttpSession`` has one total ``timeout``. A total timeout cannot tell "could not
connect" (safe to retry) from "sent, then no answer" (must not be retried), and it also bounds
the upload time of large files. This session uses aiohttp's ``sock_connect`` and ``sock_read``
instead, so aiohttp raises ``ConnectionTimeoutError`` or ``SocketTimeoutError`` respectively.
It also records the HTTP status on the aiogram exception (``botdesk_http_status``) and turns a
5xx with a body that is not JSON (a proxy's error page) into ``TelegramServerError``.

A request without files is url-encoded here directly (the same bytes aiogram's ``FormData``
sends): ``FormData`` also builds a multipart writer with a random boundary for every request,
a third of the form's cost, on the path every campaign message takes.
"""

from __future__ import annotations

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
    from aiogram.types import InputFile

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
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        form = self.build_form_data(bot=bot, method=method)
        try:
            async with session.post(url, data=form, timeout=self.client_timeout(timeout)) as resp:
                raw_result = await resp.text()
        except TimeoutError as e:
            raise TelegramNetworkError(method=method, message="Request timeout error") from e
        except ClientError as e:
            raise TelegramNetworkError(method=method, message=f"{type(e).__name__}: {e}") from e
        try:
            response = self.check_response(
                bot=bot, method=method, status_code=resp.status, content=raw_result
            )
        except ClientDecodeError as e:
            if resp.status >= _SERVER_ERROR:
                err = TelegramServerError(method=method, message=f"HTTP {resp.status}")
                setattr(err, HTTP_STATUS_ATTR, resp.status)
                raise err from e
            setattr(e, HTTP_STATUS_ATTR, resp.status)
            raise
        except TelegramAPIError as e:
            setattr(e, HTTP_STATUS_ATTR, resp.status)
            raise
        return cast(TelegramType, response.result)
