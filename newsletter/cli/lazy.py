"""The command's sub-commands, imported when they are called: ``newsletter demo`` loads the demo's
modules, not the web app's, the CSV importer's and every other command's (a third of the demo's
wall time was importing them).

A sub-command group is named by the modules that build it (the first holds its ``app``; the
others add commands to it when imported); a root command by its module and function.
``--help`` lists every command and so imports them all.
"""

from __future__ import annotations

from importlib import import_module

import typer
from typer._click import Command, Context  # Typer's own copy of click, which its groups use
from typer.core import TyperGroup

#: group name -> its modules under newsletter.cli (the first defines ``app``)
GROUPS: dict[str, tuple[str, ...]] = {
    "db": ("database",),
    "newsletters": ("newsletters",),
    "articles": ("articles",),
    "issues": ("issues", "review", "sections", "sending", "editions"),
    "subscribers": ("subscribers", "subscriber_show"),
    "segments": ("segments",),
    "admin": ("admin",),
    "bounces": ("bounces",),
    "webhooks": ("webhooks",),
    "audit": ("audit",),
    "dkim": ("dkim",),
    "relays": ("relays",),
    "autopilot": ("autopilot",),
    "analytics": ("analytics",),
}
#: root command -> (its module under newsletter.cli, the function)
COMMANDS: dict[str, tuple[str, str]] = {
    "seed": ("run", "seed"),
    "demo": ("run", "demo"),
    "worker": ("run", "worker"),
    "serve": ("run", "serve"),
    "dev": ("dev", "dev"),
    "sink": ("dev", "sink"),
}


def _module(name: str) -> object:
    return import_module(f"newsletter.cli.{name}")


def group(name: str) -> Command:
    # the others are imported for the commands they add to the first's app
    first, *_others = [_module(m) for m in GROUPS[name]]
    command = typer.main.get_group(first.app)  # type: ignore[attr-defined]
    command.name = name
    return command


def root_command(name: str) -> Command:
    module, function = COMMANDS[name]
    single = typer.Typer(add_completion=False)
    single.command(name=name)(getattr(_module(module), function))
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """A Typer group that imports a sub-command's modules when it is looked up."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in GROUPS:
            return group(cmd_name)
        if cmd_name in COMMANDS:
            return root_command(cmd_name)
        return None

    @staticmethod
    def load_all() -> None:
        for modules in GROUPS.values():
            for name in modules:
                _module(name)
        for name, _function in COMMANDS.values():
            _module(name)
