"""botdesk: a self-hosted operations console for Telegram bots (Bot API only)."""

__version__ = "0.1.0"
