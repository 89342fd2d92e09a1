"""aiogram imported through botdesk's hook: models are built on first use, and all of them can be.

Run in a fresh interpreter: the test process has long imported aiogram the stock way.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys
from botdesk.telegram.fast_import import install; install()
import aiogram.methods as methods
import aiogram.types as types
from pydantic import BaseModel

def models(mod):
    return [
        getattr(mod, n) for n in mod.__all__
        if isinstance(getattr(mod, n), type) and issubclass(getattr(mod, n), BaseModel)
    ]

complete_after_import = sorted(m.__name__ for m in models(types) if m.__pydantic_complete__)
msg = types.Message.model_validate(
    {"message_id": 5, "date": 1, "chat": {"id": 9, "type": "private"},
     "from": {"id": 9, "is_bot": False, "first_name": "A"}, "text": "hi"}
)
update = types.Update.model_validate({"update_id": 1, "message": msg.model_dump()})
failed = []
for m in models(types) + models(methods):
    try:
        m.model_rebuild(raise_errors=True)
    except Exception as exc:  # every model must be buildable from the recorded namespace
        failed.append(f"{m.__name__}: {exc}")
print(json.dumps({
    "complete_after_import": complete_after_import,
    "update_text": update.message.text,
    "sender": update.message.from_user.first_name,
    "models": len(models(types)) + len(models(methods)),
    "failed": failed,
}))
"""


def test_aiogram_models_are_deferred_and_all_build() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    r = json.loads(out)
    # Nothing is built by the import itself (that was 3.5 s and 100 MB)...
    assert r["complete_after_import"] == []
    # ...models validate on first use, nested forward references resolved...
    assert (r["update_text"], r["sender"]) == ("hi", "A")
    # ...and every type and method still builds.
    assert r["models"] > 500
    assert r["failed"] == []


SSL_PROBE = r"""
import asyncio, json, ssl
from botdesk.telegram.fast_import import install; install()
import aiogram  # imports aiohttp.connector through the hook
import aiohttp.connector as connector

def cas(ctx):
    return ctx.cert_store_stats()["x509_ca"]

class Req:  # what TCPConnector._get_ssl_context reads of a request
    def __init__(self, verify):
        self.ssl = verify
    def is_ssl(self):
        return True

async def main():
    before = [cas(connector._SSL_CONTEXT_VERIFIED), cas(connector._SSL_CONTEXT_UNVERIFIED)]
    conn = connector.TCPConnector()
    verified = conn._get_ssl_context(Req(True))
    unverified = conn._get_ssl_context(Req(False))
    await conn.close()
    fresh = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    fresh.set_default_verify_paths()  # the class method is aiohttp's own again
    return {
        "before": before,
        "after": [cas(verified), cas(unverified)],
        "same": [verified is connector._SSL_CONTEXT_VERIFIED,
                 unverified is connector._SSL_CONTEXT_UNVERIFIED],
        "fresh": cas(fresh),
        "verify_mode": int(verified.verify_mode),
    }

print(json.dumps(asyncio.run(main())))
"""


def test_aiohttp_default_ssl_contexts_load_the_ca_store_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SSL_PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    r = json.loads(out)
    assert r["before"] == [0, 0]  # not read at import
    assert r["same"] == [True, True]
    # Handed out with the system CA store loaded, like a context built the stock way.
    assert r["after"] == [r["fresh"], r["fresh"]]
    assert r["fresh"] > 0
    assert r["verify_mode"] == 2  # ssl.CERT_REQUIRED
