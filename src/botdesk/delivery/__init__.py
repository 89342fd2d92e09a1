"""Delivery: the pieces that turn a campaign's pending rows into sends.

``ratelimit`` (per-bot limiter), ``policy`` (pure retry decisions), ``templates`` (variables,
escaping, markup validation) and, above them, ``ledger`` and ``worker``.
"""
