"""The whole exception tree of botdesk.

Every error botdesk raises derives from ``BotdeskError``. Adapters wrap library errors at
the boundary (``raise XError(...) from exc``) so the layers above see one vocabulary.

    BotdeskError
    ├── UserError                  expected: one clear line, CLI exit code 2
    │   ├── ConfigError            bad botdesk.toml / environment (file, key, reason)
    │   ├── SecretError            secret store unusable, secret missing
    │   │   └── SecretNotFound
    │   ├── NotFoundError          a named thing (bot, campaign, chat) does not exist
    │   ├── ValidationError        bad input: template, segment, file, argument
    │   │   ├── SegmentSyntaxError carries the position of the problem
    │   │   └── TemplateError
    │   ├── TelegramError          Telegram (or the sandbox) refused or was unreachable
    │   │   ├── InvalidToken       malformed or rejected (401) token
    │   │   └── TelegramUnreachable
    │   ├── DeliveryError          a campaign cannot do what was asked (state, audience)
    │   └── AssistantError         knowledge base / provider configuration problems
    │       └── KnowledgeImportError
    └── StoreError                 unexpected: database failures (exit code 1)
        └── MigrationError         the schema is not at the expected revision

``UserError`` marks errors that are the operator's to fix; anything else reaching the
CLI is a bug or an environment failure and gets a log reference instead of a traceback.
"""

from __future__ import annotations


class BotdeskError(Exception):
    """Base of every error botdesk raises."""


class UserError(BotdeskError):
    """An expected error: the message is shown as one line and the CLI exits with 2."""


class ConfigError(UserError):
    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        where = ", ".join(p for p in (file, f"key '{key}'" if key else None) if p)
        super().__init__(f"invalid configuration ({where}): {reason}" if where else reason)


class SecretError(UserError):
    pass


class SecretNotFound(SecretError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"secret '{name}' is not in the secret store")


class NotFoundError(UserError):
    pass


class ValidationError(UserError):
    pass


class SegmentSyntaxError(ValidationError):
    def __init__(self, message: str, *, expression: str, position: int) -> None:
        self.expression = expression
        self.position = position
        super().__init__(f"segment syntax error at position {position}: {message}")


class TemplateError(ValidationError):
    pass


class TelegramError(UserError):
    pass


class InvalidToken(TelegramError):
    pass


class TelegramUnreachable(TelegramError):
    pass


class DeliveryError(UserError):
    pass


class AssistantError(UserError):
    pass


class KnowledgeImportError(AssistantError):
    pass


class StoreError(BotdeskError):
    pass


class MigrationError(StoreError):
    pass
