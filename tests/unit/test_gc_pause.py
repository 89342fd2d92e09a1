"""The collector is off during a CLI command's start-up and always comes back on.

In a fresh interpreter: ``gc.freeze`` would otherwise keep the test process's objects.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import gc, json, time
from botdesk import gc_pause

out = {}
gc_pause.pause(limit_s=60)
out["paused"] = not gc.isenabled()
gc_pause.pause(limit_s=60)  # a second pause is a no-op
gc_pause.resume()
out["resumed"] = gc.isenabled()
out["frozen"] = gc.get_freeze_count()
gc_pause.resume()
out["still_on"] = gc.isenabled()

gc_pause.pause(limit_s=0.2)  # nobody calls resume: the timer does
off_at_first = not gc.isenabled()
deadline = time.monotonic() + 10
while not gc.isenabled() and time.monotonic() < deadline:
    time.sleep(0.02)
out["timer"] = [off_at_first, gc.isenabled()]
print(json.dumps(out))
"""


def test_pause_resume_and_the_time_limit() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    r = json.loads(out)
    assert r["paused"] and r["resumed"] and r["still_on"]
    assert r["frozen"] > 1000  # start-up's objects moved out of later collections
    assert r["timer"] == [True, True]
