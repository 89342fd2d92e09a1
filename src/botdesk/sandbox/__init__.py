"""botdesk.sandbox: a local Telegram Bot API server with simulated users, limits and faults.

Stands alone (stdlib + aiohttp): nothing else in botdesk is imported here. See
docs/sandbox.md for the wire behaviour, the control API and the known differences.
"""

from .config import FaultConfig, SandboxConfig, parse_faults, parse_latency
from .errors import ApiError, SandboxError
from .server import Sandbox
from .world import BotInfo, UserInfo

__all__ = [
    "ApiError",
    "BotInfo",
    "FaultConfig",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "UserInfo",
    "parse_faults",
    "parse_latency",
]
