"""The `botdesk` command: a root typer app, global options and the error boundary.

Expected errors (``UserError``) print one redacted line and exit 2. Anything else is logged
with its traceback (redacted) to ``<home>/logs/botdesk-errors.log`` and the user gets a short
line with a reference and exit code 1: no traceback on the terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from botdesk.cli import bot, config_cmd, db_cmd, secrets_cmd
from botdesk.cli.common import STATE

app = typer.Typer(
    name="botdesk",
    help="Operations console for Telegram bots: subscribers, campaigns, AI assistant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    home: Path | None = typer.Option(
        None,
        "--home",
        help="botdesk home (botdesk.toml, database, secrets); default $BOTDESK_HOME or the "
        "user data dir. Accepted anywhere on the command line.",
    ),
) -> None:
    if home is not None:
        STATE.home = home


app.add_typer(bot.app, name="bot", help="Register, list and remove bots.")
app.add_typer(secrets_cmd.app, name="secrets", help="Manage secrets (tokens, API keys).")
app.add_typer(config_cmd.app, name="config", help="Show the effective configuration.")
app.add_typer(db_cmd.app, name="db", help="Database schema: upgrade and status.")
app.command("doctor", help="Check home, database, secrets and every bot.")(config_cmd.doctor)

_GROUPS = ("subscribers", "campaign", "inbox", "kb", "rules", "sequence")
_COMMANDS = (
    ("serve_cmd", "serve"),
    ("demo_cmd", "demo"),
    ("gui_cmd", "gui"),
    ("sandbox", "command"),
)


_REGISTERED: set[str] = set()  # in-process callers (tests) run main() many times


def _optional_module(name: str, attr: str) -> Any:
    """A command module added by a later part of the product, or None if it is absent."""
    try:
        return __import__(f"botdesk.cli.{name}", fromlist=[attr])
    except ModuleNotFoundError as exc:
        if exc.name != f"botdesk.cli.{name}":
            raise
        return None


def _register(command: str | None) -> None:
    """Add the command groups and top-level commands to ``app``.

    ``command``: the subcommand on the command line. Only its module is imported (a
    `campaign run` does not load the modules of `kb`, `gui` or `serve`); ``None`` (help, no
    or unknown command) registers everything, so help lists every command.
    """
    for name in _GROUPS:
        if (command is not None and name != command) or name in _REGISTERED:
            continue
        _REGISTERED.add(name)
        mod = _optional_module(f"{name}_cmd", "app")
        if mod is not None:
            doc = mod.__doc__
            app.add_typer(mod.app, name=name, help=doc.splitlines()[0] if doc else None)
    for name, attr in _COMMANDS:
        if (command is not None and name.removesuffix("_cmd") != command) or name in _REGISTERED:
            continue
        _REGISTERED.add(name)
        mod = _optional_module(name, attr)
        if mod is not None:
            fn = getattr(mod, attr)
            app.command(name.removesuffix("_cmd"), help=(fn.__doc__ or "").strip().splitlines()[0])(
                fn
            )


def _subcommand(args: list[str]) -> str | None:
    """The lazily registered command ``args`` invoke, or None (help, or anything else)."""
    known = {*_GROUPS, *(n.removesuffix("_cmd") for n, _ in _COMMANDS)}
    return args[0] if args and args[0] in known else None


def _extract_home(argv: list[str]) -> list[str]:
    """Accept `--home DIR` after the subcommand too (`botdesk bot list --home X`)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            out.extend(argv[i:])
            break
        if a == "--home" and i + 1 < len(argv):
            STATE.home = Path(argv[i + 1])
            i += 2
            continue
        if a.startswith("--home="):
            STATE.home = Path(a.split("=", 1)[1])
            i += 1
            continue
        out.append(a)
        i += 1
    return out


def _report_unexpected(exc: BaseException) -> int:
    from botdesk.cli.common import home_path
    from botdesk.error_report import record_unexpected

    report = record_unexpected(exc, home_path() / "logs")
    if report.where == "stderr":
        sys.stderr.write(report.details)
    sys.stderr.write(f"botdesk: {report.line()}\n")
    return 1


def _cli_errors() -> tuple[type[BaseException], ...]:
    """Usage errors of the CLI library; typer >= 0.20 vendors click, older typer uses it."""
    found: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as VendoredClickException

        found.append(VendoredClickException)
    except ImportError:  # pragma: no cover - depends on the typer release
        pass
    try:
        import click  # type: ignore[import-not-found,unused-ignore]  # absent in fresh venvs

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    from botdesk.errors import UserError

    STATE.home = None  # in-process callers (tests) must not inherit an earlier --home
    args = _extract_home(list(sys.argv[1:] if argv is None else argv))
    if args and args[0] in ("campaign", "subscribers", "bot", "inbox"):
        # Commands that send or list build aiogram's models on first use (fast_import);
        # not yet `serve`: an assistant e2e flow failed with it (issue 13, part 2).
        from botdesk import gc_pause
        from botdesk.telegram.fast_import import install

        if argv is None:  # a process of its own, not an in-process caller (tests)
            gc_pause.pause()  # resumed when the work starts, or after gc_pause.LIMIT_S
        install()
    _register(_subcommand(args))
    usage_errors = _cli_errors()
    try:
        rv = app(args=args, prog_name="botdesk", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except UserError as exc:
        from botdesk.log import REDACTOR

        sys.stderr.write(f"botdesk: error: {REDACTOR.redact(str(exc))}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("botdesk: aborted\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("botdesk: interrupted\n")
        return 130
    except usage_errors as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"botdesk: error: {exc}\n")
        code = getattr(exc, "exit_code", 2)
        return int(code) if isinstance(code, int) else 2
    except Exception as exc:
        return _report_unexpected(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
