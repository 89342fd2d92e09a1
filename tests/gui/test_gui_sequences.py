"""The Sequences screen against the sandbox and a real SQLite home: a file loaded from the
screen is listed with its steps; a bad file shows the CLI's problem lines inline and stores
nothing; subscribers who /start are enrolled and the console's runtime sends their first step
(counted in the step table); a reply stops one of them ("replied"); Pause / Resume change the
state; loading a file of the same name again updates it after a confirmation; the screen fits
1280x800."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.gui.conftest import BOT, USERNAME, console_on, until
from tests.gui.test_gui_layout import HEIGHT, WIDTH, cut_columns, fits

from botdesk.gui.views.sequences import SequencesView
from botdesk.sequence_file import SequenceFileError, read_sequence

GOOD = """\
name: welcome
trigger: start
stop: {on_reply: true, goal_tag: customer}
steps:
  - text: "Welcome, {first_name}!"
    delay: 0s
    buttons:
      - {label: Prices, action: "cb:tag=prices"}
  - text: "Day two: our best sellers."
    delay: 1d
"""
# Two problems: the CLI prints one line for each.
BAD = """\
name: welcome
trigger: start
steps:
  - text: "Hello"
    delay: soon
  - delay: 1d
"""
UPDATED = (
    GOOD
    + """\
  - text: "Day five: free shipping."
    delay: 3d
"""
)


def cell(model, row: int, column: str) -> str:
    names = [h for h, _g in model.columns]
    return str(model.data(model.index(row, names.index(column))))


def test_load_list_steps_stop_pause_resume_update(drive, home: Path, tmp_path: Path) -> None:
    good, bad, updated = tmp_path / "welcome.yaml", tmp_path / "bad.yaml", tmp_path / "v2.yaml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(BAD, encoding="utf-8")
    updated.write_text(UPDATED, encoding="utf-8")
    with pytest.raises(SequenceFileError) as problems:
        read_sequence(bad)

    async def scenario() -> None:
        async with console_on(home) as (window, sb, _people):
            services = window.ctx.services
            view = window.open_screen(SequencesView)
            await until(lambda: view.bot.currentText() == BOT and view.loaded, what="bots")
            assert view.list.rowCount() == 0
            assert "No sequences yet" in view.summary.text()

            # A bad file: the problems `sequence create` prints, inline; nothing stored.
            view.load_file(bad)
            await until(view.error.isVisible, what="problems shown")
            assert view.error.text() == "\n".join(problems.value.problems)
            assert len(problems.value.problems) == 2
            assert view.error.text().startswith("bad.yaml:5: step 1: delay:")
            assert await services.sequences(BOT) == []

            # Through the button, with the file dialog answered.
            window.ctx.choose_file = lambda _w, _t, _save: str(good)
            view.load_btn.click()
            await until(lambda: view.list.rowCount() == 1, what="listed")
            assert not view.error.isVisible()
            assert [cell(view.list, 0, c) for c in ("name", "trigger", "state", "steps")] == [
                "welcome",
                "/start",
                "active",
                "2",
            ]
            await until(lambda: view.steps.rowCount() == 2, what="its steps")
            assert cell(view.steps, 0, "text") == "Welcome, {first_name}!"
            assert cell(view.steps, 1, "delay") == "1d"
            assert cell(view.steps, 0, "clicks") == "0 (0 unique)"
            assert cell(view.steps, 1, "clicks") == "-"  # no buttons
            assert view.pause_btn.isEnabled() and not view.resume_btn.isEnabled()

            # Two subscribers /start: enrolled, the first step goes out through the engine.
            people = sb.add_users(2)
            for u in people:
                await sb.user_start(u.id, USERNAME)
            await until(
                lambda: cell(view.steps, 0, "sent") == "2", within=45, what="step 1 sent twice"
            )
            got = [m for m in sb.messages(bot=USERNAME) if "Welcome, " in (m.get("text") or "")]
            assert len(got) >= 2
            assert cell(view.list, 0, "enrolled") == "2"
            assert cell(view.list, 0, "active") == "2"

            # A reply stops the sequence for that subscriber ("replied").
            await sb.user_send(people[0].id, USERNAME, "how much is it?")
            await until(
                lambda: cell(view.list, 0, "stopped") == "1", within=30, what="stopped on reply"
            )
            assert "replied 1" in view.summary.text()
            assert cell(view.list, 0, "active") == "1"

            # Pause and resume: the same service as `botdesk sequence pause/resume`.
            view.pause_btn.click()
            await until(lambda: cell(view.list, 0, "state") == "paused", what="paused")
            assert (await services.sequences(BOT))[0]["state"] == "paused"
            assert view.resume_btn.isEnabled() and not view.pause_btn.isEnabled()
            view.resume_btn.click()
            await until(lambda: cell(view.list, 0, "state") == "active", what="resumed")
            assert (await services.sequences(BOT))[0]["state"] == "active"

            # The same name again: an update, after a confirmation that says so.
            asked: list[str] = []

            def confirm(_w, _title: str, message: str) -> bool:
                asked.append(message)
                return True

            window.ctx.confirm = confirm
            view.load_file(updated)
            await until(lambda: cell(view.list, 0, "version") == "2", what="updated")
            assert asked and "already has a sequence 'welcome'" in asked[0]
            await until(lambda: view.steps.rowCount() == 3, what="three steps")
            assert view.list.rowCount() == 1

            # Refused: nothing changes, no error.
            window.ctx.confirm = lambda *_a: False
            view.load_file(good)
            await window.ctx.bridge.drain()
            assert (await services.sequences(BOT))[0]["version"] == 2

    drive(scenario())


def test_sequences_screen_fits_1280(drive, home: Path, tmp_path: Path) -> None:
    good = tmp_path / "welcome.yaml"
    good.write_text(GOOD, encoding="utf-8")

    async def scenario() -> None:
        async with console_on(home) as (window, _sb, _people):
            await window.ctx.services.load_sequence(good, BOT, update=False)
            window.resize(WIDTH, HEIGHT)
            view = window.open_screen(SequencesView)
            await until(lambda: view.steps.rowCount() == 2, what="steps shown")
            await window.ctx.bridge.drain()
            assert await fits(window) == []
            assert cut_columns(view.table) == []
            assert cut_columns(view.steps_table) == []

    drive(scenario())


def test_summary_names_the_steps_an_update_dropped() -> None:
    from botdesk.gui.views.sequences import summary_text

    d = {
        "filename": "w.yaml",
        "quiet_hours": None,
        "stop_on_reply": True,
        "goal_tag": None,
        "dropped_steps": [{"number": 3, "campaign_id": 9, "dropped_in_version": 2}],
    }
    seq = {"name": "w", "id": 1, "state": "active", "version": 2, "trigger": "/start"}
    seq |= {"enrolled": 0, "active": 0, "completed": 0, "stopped": 0, "stopped_by": {}}
    text = summary_text(seq | {"definition": d})
    assert text.endswith("Dropped by updates: step 3 (campaign 9, by version 2).")
    assert "Dropped" not in summary_text(seq | {"definition": d | {"dropped_steps": []}})
