"""`botdesk demo` end to end on a small crowd: every part of the story happens."""

from __future__ import annotations

import io

from rich.console import Console

from botdesk.runtime.demo import run_demo


async def test_demo_tells_the_whole_story() -> None:
    out = io.StringIO()
    summary = await run_demo(users=30, seed=3, console=Console(file=out, width=100))
    subs = summary["subscribers"]
    assert sum(subs.values()) == 30
    assert subs["unsubscribed"] + subs["blocked"] == 3  # a tenth leaves, a third of them block
    assert summary["sources"]["invalid"] == 3  # every tenth deep link is malformed
    report = summary["campaign"]
    assert report["campaign"]["state"] == "completed"
    assert report["counts"]["sent"] == subs["active"] == report["campaign"]["audience"]
    assert summary["sandbox"]["rate_limited"] == 0  # paced, never provoked a 429
    assert summary["handoffs"] == 2  # the out-of-scope question and the human request
    seq = summary["sequence"]
    assert seq["enrolled"] == 30 and seq["active"] == 0
    assert seq["completed"] + seq["stopped"] == 30
    assert seq["stopped_by"]["replied"] >= 1  # the askers replied to the bot
    assert seq["steps"][0]["clicks"]["unique"] >= 1  # pressed "Jackets, please"
    assert seq["steps"][2]["sent"] + seq["steps"][2]["skipped"] == seq["completed"]
    transcript = "\n".join(summary["transcript"])
    assert "4.95 EUR" in transcript and "Hi, this is Anna" in transcript
    assert "what the assistant said" in out.getvalue()
