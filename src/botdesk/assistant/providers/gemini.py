"""Gemini through the google-genai SDK (async client), grounded in knowledge entries.

Owns the mapping of google-genai's errors and blocked responses onto ``ProviderFailure`` kinds.
The API key arrives as a string (the caller resolves it from the secret store); ``base_url``
points the SDK at a proxy, a regional endpoint or a local fake in tests. The SDK's own retries
stay off (no ``HttpRetryOptions``): the service owns retrying.

The SDK is handed its own ``httpx.AsyncClient``: with aiohttp installed it would otherwise
subclass ``aiohttp.ClientSession``, which aiohttp deprecates (a warning on every first call).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from botdesk.assistant.failures import ProviderFailure, classify_status
from botdesk.assistant.providers.base import (
    AssistantReply,
    AssistantRequest,
    build_messages,
    parse_grounded_reply,
)

DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_OUTPUT_TOKENS = 512
_BLOCKED_FINISH = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}
)


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_version: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        temperature: float = 0.2,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        self.model = model
        self._timeout = timeout
        self._temperature = temperature
        self._max_output_tokens = max_output_tokens
        self._http = httpx.AsyncClient(timeout=timeout)
        options = types.HttpOptions(
            base_url=base_url,
            api_version=api_version,
            timeout=int(timeout * 1000),
            httpx_async_client=self._http,
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    async def answer(self, req: AssistantRequest) -> AssistantReply:
        system, turns = build_messages(req)
        contents = [
            types.Content(role="user" if role == "user" else "model", parts=[types.Part(text=text)])
            for role, text in turns
        ]
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=self._temperature,
            max_output_tokens=self._max_output_tokens,
        )
        try:
            # The SDK's timeout covers one HTTP request; the outer one also bounds reading.
            async with asyncio.timeout(self._timeout + 1.0):
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
        except genai_errors.APIError as exc:
            raise _from_api_error(exc) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProviderFailure("timeout", f"no answer within {self._timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise ProviderFailure("server", f"connection failed: {type(exc).__name__}") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderFailure("unknown", f"{type(exc).__name__}: {exc}") from exc
        return self._reply(response, req)

    def _reply(
        self, response: types.GenerateContentResponse, req: AssistantRequest
    ) -> AssistantReply:
        feedback = response.prompt_feedback
        if not response.candidates:
            if feedback is not None and feedback.block_reason is not None:
                raise ProviderFailure("safety", f"prompt blocked: {_name(feedback.block_reason)}")
            raise ProviderFailure("unknown", "response without candidates")
        candidate = response.candidates[0]
        finish = _name(candidate.finish_reason) if candidate.finish_reason is not None else ""
        if finish in _BLOCKED_FINISH:
            raise ProviderFailure("safety", f"answer blocked: finish reason {finish}")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        if not text.strip():
            raise ProviderFailure("unknown", f"empty answer (finish reason {finish or 'none'})")
        return parse_grounded_reply(text, req, provider=self.name)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        await self._http.aclose()
        self._client.close()


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _from_api_error(exc: genai_errors.APIError) -> ProviderFailure:
    code = int(exc.code or 0)
    kind = classify_status(code) if code else "unknown"
    status = exc.status or ""
    if status == "RESOURCE_EXHAUSTED":
        kind = "rate_limited"
    retry_after: float | None = None
    quota: list[str] = []
    details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    for item in details.get("details", []) if isinstance(details, dict) else []:
        if not isinstance(item, dict):
            continue
        kind_url = str(item.get("@type", ""))
        if kind_url.endswith("google.rpc.RetryInfo"):
            m = _DURATION.match(str(item.get("retryDelay", "")))
            if m:
                retry_after = float(m.group(1))
        elif kind_url.endswith("google.rpc.QuotaFailure"):
            for v in item.get("violations", []):
                if isinstance(v, dict):
                    quota.append(str(v.get("quotaId") or v.get("quotaMetric") or v))
    detail = f"HTTP {code} {status}: {exc.message or ''}".strip()
    if quota:
        detail += f" (quota: {', '.join(quota)})"
    return ProviderFailure(kind, detail, retry_after=retry_after)
