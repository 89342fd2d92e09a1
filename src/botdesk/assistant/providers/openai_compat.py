"""OpenAI-compatible chat completions (llama.cpp server, Ollama, vLLM, hosted APIs).

Owns one aiohttp session per provider and the mapping of HTTP answers onto
``ProviderFailure`` kinds: ``POST {base_url}/chat/completions``, bearer key optional. A
``Retry-After`` header (seconds) on 429 becomes ``retry_after``; ``finish_reason`` equal to
``content_filter`` or a 400 with code ``content_filter`` / ``content_policy_violation`` is a
safety block.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from botdesk.assistant.failures import ProviderFailure, classify_status
from botdesk.assistant.providers.base import (
    AssistantReply,
    AssistantRequest,
    build_messages,
    parse_grounded_reply,
)

DEFAULT_TIMEOUT = 30.0
_SAFETY_CODES = frozenset({"content_filter", "content_policy_violation"})


class OpenAICompatProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        temperature: float = 0.2,
        max_tokens: int = 512,
    ) -> None:
        self.model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._timeout = timeout
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: the session must belong to the running event loop.
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    async def answer(self, req: AssistantRequest) -> AssistantReply:
        system, turns = build_messages(req)
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}]
            + [{"role": role, "content": text} for role, text in turns],
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "stream": False,
        }
        try:
            async with self._get_session().post(self._url, json=body) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after_header = resp.headers.get("Retry-After")
        except TimeoutError as exc:
            raise ProviderFailure("timeout", f"no answer within {self._timeout:g} s") from exc
        except aiohttp.ClientConnectionError as exc:
            raise ProviderFailure("server", f"connection failed: {type(exc).__name__}") from exc
        except aiohttp.ClientError as exc:
            raise ProviderFailure("unknown", f"{type(exc).__name__}: {exc}") from exc
        data = _json(raw)
        if status != 200:
            raise _failure(status, data, retry_after_header)
        return self._reply(data, req)

    def _reply(self, data: Any, req: AssistantRequest) -> AssistantReply:
        try:
            choice = data["choices"][0]
            finish = choice.get("finish_reason")
            content = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderFailure("unknown", "malformed completion response") from exc
        if finish == "content_filter":
            raise ProviderFailure("safety", "answer blocked: finish_reason content_filter")
        if not isinstance(content, str) or not content.strip():
            raise ProviderFailure("unknown", f"empty answer (finish_reason {finish})")
        return parse_grounded_reply(content, req, provider=self.name)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _failure(status: int, data: Any, retry_after_header: str | None) -> ProviderFailure:
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")[:200]
    kind = classify_status(status)
    if status == 400 and code in _SAFETY_CODES:
        kind = "safety"
    retry_after: float | None = None
    if retry_after_header is not None:
        try:
            retry_after = float(retry_after_header)
        except ValueError:
            retry_after = None
    return ProviderFailure(
        kind, f"HTTP {status} {code}: {message}".strip(), retry_after=retry_after
    )


__all__ = ["OpenAICompatProvider"]
