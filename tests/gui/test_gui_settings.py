"""Settings: add a bot with a malformed token, with one the server refuses, with a good one;
remove it after a confirmation; save settings (a key goes to the secret store only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.gui.conftest import console_on, until

from botdesk.errors import ConfigError
from botdesk.gui.views.settings import API_KEY_SECRET, SettingsView


def test_add_bot_malformed_refused_good_then_remove(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home) as (window, sb, _people):
            view = window.open_screen(SettingsView)
            await until(lambda: view.bots.rowCount() == 1)
            view.api_base.setText(sb.base_url)

            view.bot_name.setText("news")
            view.token.setText("not-a-token")
            view.add_btn.click()
            await until(view.bot_error.isVisible, what="malformed token error")
            assert "token" in view.bot_error.text().lower()
            assert "not-a-token" not in view.bot_error.text()

            view.token.setText("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0")
            view.add_btn.click()
            await until(
                lambda: (
                    view.add_btn.isEnabled()
                    and view.bot_error.isVisible()
                    and "not-a-token" not in view.bot_error.text()
                ),
                what="refused token",
            )
            assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0" not in view.bot_error.text()
            assert view.bots.rowCount() == 1

            good = sb.add_bot("news_test_bot")
            view.token.setText(good.token)
            view.add_btn.click()
            await until(lambda: view.bots.rowCount() == 2, what="bot added")
            assert not view.bot_error.isVisible() and view.token.text() == ""
            rec = await window.ctx.services.bot("news")
            assert rec.username == "news_test_bot"
            # Stored only in the secret store: not in the database row, not in the config file.
            assert window.ctx.services.registry().token(rec) == good.token
            assert good.token not in (home / "botdesk.toml").read_text()
            assert good.token.encode() not in (home / "botdesk.db").read_bytes()
            # The console now serves it too.
            await until(lambda: "news" in window.ctx.services.runtime.runs, what="served")

            asked = []
            window.ctx.confirm = lambda _w, title, msg: asked.append(msg) or True
            names = [view.bots.row(i).name for i in range(view.bots.rowCount())]
            view.bot_table.selectRow(names.index("news"))
            view.remove_btn.click()
            await until(lambda: view.bots.rowCount() == 1, what="removed")
            assert "news" in asked[0]

    drive(scenario())


def test_save_settings_keeps_the_key_in_the_secret_store(drive, home: Path) -> None:
    async def scenario() -> None:
        async with console_on(home) as (window, _sb, _people):
            view = window.open_screen(SettingsView)
            view.provider.setCurrentText("gemini")
            view.api_key.setText("AIzaSyD-secret-key-for-test-0123456789")
            view.rate.setValue(20)
            view.theme.setCurrentText("dark")
            view.save_btn.click()
            assert view.error.isHidden()
            text = (home / "botdesk.toml").read_text()
            assert "secret-key" not in text and f'api_key_secret = "{API_KEY_SECRET}"' in text
            assert window.ctx.services.app.secrets.get(API_KEY_SECRET).startswith("AIzaSyD")
            assert view.api_key.text() == ""  # never shown back
            s = window.ctx.services.app.settings
            assert (s.assistant.provider, s.delivery.rate, s.gui.theme) == ("gemini", 20.0, "dark")

            # An invalid value: the configuration's one line inline, and the file unchanged.
            before = (home / "botdesk.toml").read_text()
            view.provider.setCurrentText("offline")
            view.model_name.setText("x" * 10)
            window.ctx.services.app.settings = s
            with pytest.raises(ConfigError, match=r"delivery\.rate"):
                window.ctx.services.save_settings({"delivery": {"rate": -1}})
            view.paid_rate.setMinimum(0)
            view.paid_rate.setValue(0)  # paid_rate must be > 0
            view.save_btn.click()
            assert not view.error.isHidden() and "paid_rate" in view.error.text()
            assert (home / "botdesk.toml").read_text() == before

    drive(scenario())
