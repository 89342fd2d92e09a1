"""botdesk: a self-hosted operations console for Telegram bots (Bot API only)."""

from botdesk.telegram.fast_import import install as _install_fast_aiogram_import

__version__ = "0.1.0"

# Before anything imports aiogram: its models are then built on first use (see fast_import).
_install_fast_aiogram_import()
