"""One module per screen; every screen is a ``View`` (see base.py)."""
