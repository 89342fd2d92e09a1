"""The control API: JSON endpoints under /sandbox/ that script the world from other processes.

Every endpoint maps onto a ``Sandbox`` method; docs/sandbox.md lists requests and answers.
Misuse answers 400 ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import FaultConfig
from .errors import SandboxError

if TYPE_CHECKING:
    from .server import Sandbox

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def _endpoint(fn: Callable[[web.Request, dict[str, Any]], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.body_exists:
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                return _reply({"ok": False, "error": "request body is not JSON"}, 400)
            if not isinstance(body, dict):
                return _reply({"ok": False, "error": "request body must be a JSON object"}, 400)
        try:
            return _reply(await fn(request, body))
        except SandboxError as exc:
            return _reply({"ok": False, "error": str(exc)}, 400)
        except (KeyError, TypeError, ValueError) as exc:
            return _reply({"ok": False, "error": f"bad request: {exc!s}"}, 400)

    return handler


def _faults_json(config: FaultConfig) -> dict[str, Any]:
    data = asdict(config)
    data["storms"] = [list(s) for s in config.storms]
    data["spec"] = config.to_spec()
    return data


def add_routes(app: web.Application, sb: Sandbox) -> None:
    def uid(request: web.Request) -> int:
        try:
            return int(request.match_info["user_id"])
        except ValueError:
            raise SandboxError("user id must be an integer") from None

    async def bots(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            info = sb.add_bot(body["username"], body.get("token"))
            return asdict(info)
        return [asdict(b) for b in sb.bots()]

    async def users(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return sb.users()
        start = body.get("start", False)
        names = body.get("bots") or ([b.username for b in sb.bots()] if start else [])
        made = sb.add_users(
            int(body.get("count", 1)), names if start else None, body.get("payload")
        )
        return [asdict(u) for u in made]

    async def action(request: web.Request, body: dict[str, Any]) -> Any:
        user_id, verb = uid(request), request.match_info["action"]
        if verb == "start":
            return await sb.user_start(user_id, body["bot"], body.get("payload"))
        if verb == "send":
            return await sb.user_send(user_id, body["bot"], str(body["text"]))
        if verb == "press":
            return await sb.user_press(user_id, body["bot"], int(body["message_id"]), body["data"])
        if verb == "edit":
            return await sb.user_edit(user_id, body["bot"], int(body["message_id"]), body["text"])
        if verb == "block":
            await sb.user_block(user_id, body["bot"])
        elif verb == "unblock":
            await sb.user_unblock(user_id, body["bot"])
        elif verb == "deactivate":
            sb.user_deactivate(user_id)
        elif verb == "delete":
            sb.user_delete(user_id)
        else:
            raise SandboxError(f"unknown user action '{verb}'")
        return {"ok": True}

    async def groups(request: web.Request, body: dict[str, Any]) -> Any:
        chat_id = sb.add_group(body["title"], [int(i) for i in body.get("member_ids", [])],
                               body["bot"])  # fmt: skip
        return {"chat_id": chat_id}

    async def messages(request: web.Request, body: dict[str, Any]) -> Any:
        chat = request.query.get("chat_id")
        return sb.messages(bot=request.query.get("bot") or None,
                           chat_id=int(chat) if chat else None)  # fmt: skip

    async def stats(request: web.Request, body: dict[str, Any]) -> Any:
        return sb.stats()

    async def faults(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return _faults_json(sb.faults.config)
        if "spec" in body:
            return _faults_json(sb.set_faults(str(body["spec"])))
        if "storms" in body:
            body["storms"] = tuple(tuple(s) for s in body["storms"])
        return _faults_json(sb.set_faults(FaultConfig(**body)))

    async def stars(request: web.Request, body: dict[str, Any]) -> Any:
        sb.set_star_balance(body["bot"], float(body["balance"]))
        return {"bot": body["bot"], "balance": sb.star_balance(body["bot"])}

    async def limits(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return sb.limits()
        names = ("bot_rate", "chat_rate", "group_per_minute", "paid_rate")
        unknown = set(body) - set(names)
        if unknown:
            raise SandboxError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        return sb.set_limits(**{n: float(body[n]) for n in names if body.get(n) is not None})

    async def clock(request: web.Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            return {"offset": sb.advance_clock(float(body.get("advance", 0)))}
        return {"offset": sb.world.clock_offset, "now": sb.world.now()}

    async def revoke(request: web.Request, body: dict[str, Any]) -> Any:
        sb.revoke_token(request.match_info["username"])
        return {"ok": True}

    async def reset(request: web.Request, body: dict[str, Any]) -> Any:
        sb.reset()
        return {"ok": True}

    r = app.router
    r.add_route("GET", "/sandbox/bots", _endpoint(bots))
    r.add_route("POST", "/sandbox/bots", _endpoint(bots))
    r.add_route("POST", "/sandbox/bots/{username}/revoke", _endpoint(revoke))
    r.add_route("GET", "/sandbox/users", _endpoint(users))
    r.add_route("POST", "/sandbox/users", _endpoint(users))
    r.add_route("POST", "/sandbox/users/{user_id}/{action}", _endpoint(action))
    r.add_route("POST", "/sandbox/groups", _endpoint(groups))
    r.add_route("GET", "/sandbox/messages", _endpoint(messages))
    r.add_route("GET", "/sandbox/stats", _endpoint(stats))
    r.add_route("GET", "/sandbox/faults", _endpoint(faults))
    r.add_route("POST", "/sandbox/faults", _endpoint(faults))
    r.add_route("POST", "/sandbox/stars", _endpoint(stars))
    r.add_route("POST", "/sandbox/reset", _endpoint(reset))
    r.add_route("GET", "/sandbox/limits", _endpoint(limits))
    r.add_route("POST", "/sandbox/limits", _endpoint(limits))
    r.add_route("GET", "/sandbox/clock", _endpoint(clock))
    r.add_route("POST", "/sandbox/clock", _endpoint(clock))
