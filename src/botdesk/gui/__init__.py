"""The desktop console (PySide6): an interface beside the CLI, over the same services.

Only this package imports Qt. See docs/gui.md for the screens and the architecture.
"""
