"""Scriptable local fakes of the Gemini API and of an OpenAI-compatible server, for tests.

Owns ``FakeGemini`` and ``FakeOpenAI``: real aiohttp servers on 127.0.0.1 speaking the real
wire formats, so the real google-genai SDK and the real OpenAI-compatible provider are tested
end to end with no network. Each request takes the next scripted ``Behaviour`` (or the default
success). Usage::

    async with FakeGemini() as fake:
        fake.script(Behaviour.error(429, retry_delay="1s"), Behaviour.ok("Hello\\nSOURCES: 1"))
        provider = GeminiProvider(api_key="k", base_url=fake.url)

Also importable by the runtime's end-to-end tests and the demo (it has no test-only imports).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Behaviour:
    """What the fake does with one request."""

    kind: str  # ok | error | delay | safety | prompt_blocked | garbage | empty
    text: str = ""
    status: int = 200
    delay: float = 0.0
    retry_delay: str | None = None  # Gemini RetryInfo ("2s") / OpenAI Retry-After seconds
    code: str = ""  # OpenAI error code (e.g. content_filter)

    @classmethod
    def ok(cls, text: str = "Here is the answer.\nSOURCES: 1") -> Behaviour:
        return cls("ok", text=text)

    @classmethod
    def error(cls, status: int, *, retry_delay: str | None = None, code: str = "") -> Behaviour:
        return cls("error", status=status, retry_delay=retry_delay, code=code)

    @classmethod
    def slow(cls, seconds: float, text: str = "late\nSOURCES: 1") -> Behaviour:
        return cls("delay", text=text, delay=seconds)

    @classmethod
    def safety(cls) -> Behaviour:
        return cls("safety")

    @classmethod
    def prompt_blocked(cls) -> Behaviour:
        return cls("prompt_blocked")

    @classmethod
    def garbage(cls) -> Behaviour:
        return cls("garbage")


@dataclass
class _Fake:
    default: Behaviour = field(default_factory=Behaviour.ok)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _queue: deque[Behaviour] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    url: str = ""

    def script(self, *behaviours: Behaviour) -> None:
        self._queue.extend(behaviours)

    def _next(self) -> Behaviour:
        return self._queue.popleft() if self._queue else self.default

    def _routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.paths.append(request.path)
        return body  # type: ignore[no-any-return]


class FakeGemini(_Fake):
    """``POST /{v1,v1beta}/models/{model}:generateContent`` like the Gemini API answers it."""

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/{version}/models/{model_action}", self._generate)]

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        b = self._next()
        if b.kind == "delay":
            await asyncio.sleep(b.delay)
            return web.json_response(_gemini_ok(b.text))
        if b.kind == "ok":
            return web.json_response(_gemini_ok(b.text))
        if b.kind == "safety":
            return web.json_response(
                {
                    "candidates": [
                        {
                            "finishReason": "SAFETY",
                            "index": 0,
                            "safetyRatings": [
                                {
                                    "category": "HARM_CATEGORY_HARASSMENT",
                                    "probability": "HIGH",
                                    "blocked": True,
                                }
                            ],
                        }
                    ],
                    "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
                    "modelVersion": "gemini-2.5-flash",
                }
            )
        if b.kind == "prompt_blocked":
            return web.json_response(
                {
                    "promptFeedback": {
                        "blockReason": "SAFETY",
                        "safetyRatings": [
                            {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"}
                        ],
                    },
                    "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
                    "modelVersion": "gemini-2.5-flash",
                }
            )
        if b.kind == "garbage":
            return web.Response(
                status=200, text="<html>proxy says hi</html>", content_type="application/json"
            )
        status_name = _GEMINI_STATUS.get(b.status, "UNKNOWN")
        details: list[dict[str, Any]] = []
        if b.status == 429:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaValue": "10",
                        }
                    ],
                }
            )
            if b.retry_delay is not None:
                details.append(
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": b.retry_delay,
                    }
                )
        error = {
            "error": {
                "code": b.status,
                "message": f"fake {status_name}",
                "status": status_name,
                "details": details,
            }
        }
        return web.json_response(error, status=b.status)


def _gemini_ok(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "candidatesTokenCount": 20,
            "totalTokenCount": 140,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "fake-1",
    }


class FakeOpenAI(_Fake):
    """``POST /v1/chat/completions`` like llama.cpp / vLLM / OpenAI answer it."""

    def _routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self._complete)]

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        b = self._next()
        if b.kind == "delay":
            await asyncio.sleep(b.delay)
            return web.json_response(_openai_ok(b.text, body))
        if b.kind == "ok":
            return web.json_response(_openai_ok(b.text, body))
        if b.kind == "safety":
            data = _openai_ok("", body)
            data["choices"][0]["finish_reason"] = "content_filter"
            return web.json_response(data)
        if b.kind == "garbage":
            return web.Response(status=200, text="not json {", content_type="application/json")
        headers = {"Retry-After": b.retry_delay} if b.retry_delay is not None else {}
        error = {
            "error": {
                "message": f"fake error {b.status}",
                "type": "fake",
                "code": b.code or None,
            }
        }
        return web.Response(
            status=b.status,
            text=json.dumps(error),
            content_type="application/json",
            headers=headers,
        )


def _openai_ok(text: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }
