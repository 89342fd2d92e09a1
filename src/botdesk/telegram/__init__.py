"""The Telegram boundary: the only package that touches aiogram's ``Bot`` and sessions."""
