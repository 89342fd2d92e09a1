"""Widgets the screens share: the Telegram-like message preview and the charts."""
