"""The sandbox's two error kinds.

``ApiError`` is an answer the Bot API gives (it becomes ``{"ok": false, ...}`` on the wire);
``SandboxError`` is misuse of the sandbox itself (bad config, unknown user in a script).
The sandbox stands alone, so these do not derive from botdesk's error tree; callers in
botdesk wrap ``SandboxError`` at their boundary.
"""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """The sandbox was asked something impossible (one line, meant for the operator)."""


class ApiError(Exception):
    """A Bot API error answer, with Telegram's status code and description."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


UNAUTHORIZED = ApiError(401, "Unauthorized")
NOT_FOUND = ApiError(404, "Not Found")
CHAT_NOT_FOUND = "chat not found"
