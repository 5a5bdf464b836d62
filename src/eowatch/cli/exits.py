"""Exit status and error line of every ``eowatch`` command, in one place.

0: done. 2: usage or bad input (an ``InputError``, an input that cannot be read, a name
that is not found, a click usage error): the line says what to change. 1: the work failed
(a server or database that failed for now, any other eowatch error, an unexpected
exception; ``eowatch --debug`` shows the latter's traceback).
Errors are one line on stderr, ``error: ...``. Groups and commands made with the
classes below apply it, also when a sub-command is invoked on its own.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
from click.exceptions import NoArgsIsHelpError

from ..errors import EowatchError, InputError, InputReadError, NotFoundError

__all__ = ["OK", "FAILURE", "BAD_INPUT", "EowatchCommand", "EowatchGroup", "exit_status", "DEBUG_KEY"]

OK, FAILURE, BAD_INPUT = 0, 1, 2
#: ``ctx.meta`` key set by ``eowatch --debug``.
DEBUG_KEY = "eowatch.debug"


def exit_status(exc: BaseException) -> int:
    """The exit status of a command that raised ``exc``."""
    if isinstance(exc, click.ClickException):
        return exc.exit_code
    bad = isinstance(exc, InputError | InputReadError | NotFoundError) and not exc.retryable
    return BAD_INPUT if bad else FAILURE


def _fail(ctx: click.Context, exc: Exception) -> NoReturn:
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx else ctx.command_path
        message = f"{exc.format_message()} (see '{where} --help')"
    elif isinstance(exc, click.ClickException):
        message = exc.format_message()
    elif isinstance(exc, EowatchError):
        message = str(exc)
    else:
        if ctx.find_root().meta.get(DEBUG_KEY):
            raise exc
        message = (
            f"unexpected {type(exc).__name__}: {exc}; rerun as `eowatch --debug ...` for the traceback "
            "and report it"
        )
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(exit_status(exc))


class _OneLineErrors(click.Command):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, NoArgsIsHelpError, BrokenPipeError):
            raise  # click's own handling (help, exit, Ctrl-C, a closed pipe: `| head`)
        except Exception as exc:
            _fail(ctx, exc)


class EowatchCommand(_OneLineErrors):
    """A command whose errors follow the exit convention."""


class EowatchGroup(_OneLineErrors, click.Group):
    """A group whose errors, and its sub-commands', follow the exit convention."""

    command_class = EowatchCommand
    group_class = type
