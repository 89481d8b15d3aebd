"""Terminal output of the operator commands: rich when it is installed, plain text when it is not.

rich is a development dependency (`pyproject.toml` dev group); an operator's installation has the runtime
dependencies only, so no operator command may need rich to import, to print its help or to run. `make_console()`
and `make_table()` hand out rich's objects when rich is there and the plain stand-ins below otherwise; the plain
console drops the few style tags the commands use (`[red]...[/red]`) and prints everything else verbatim.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Protocol

_STYLE_TAG = re.compile(r"\[/?(?:red|green|yellow|bold|dim)\]")


class Output(Protocol):
    """What the commands print through: rich's `Console` or the `PlainConsole`."""

    def print(self, *objects: Any, markup: bool | None = None, highlight: bool | None = None) -> None: ...

    def print_json(self, json: str | None = None) -> None: ...


def _plain(text: str) -> str:
    return _STYLE_TAG.sub("", text).replace("\\[", "[")


class PlainTable:
    """A table printed as aligned columns of text."""

    def __init__(self, title: str | None = None, *, show_header: bool = True) -> None:
        self.title = title
        self.show_header = show_header
        self.columns: list[str] = []
        self.rows: list[list[str]] = []

    def add_column(self, header: str = "", *, style: str | None = None, overflow: Any = "ellipsis") -> None:
        self.columns.append(header)

    def add_row(self, *renderables: Any) -> None:
        self.rows.append([_plain(str(value)) for value in renderables])

    def lines(self) -> list[str]:
        shown = [self.columns, *self.rows] if self.show_header else self.rows
        widths = [max((len(row[i]) for row in shown if i < len(row)), default=0) for i in range(len(self.columns))]
        text = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in shown]
        return [self.title, *text] if self.title else text


class PlainConsole:
    """`print` and `print_json` on stdout, without colour or markup."""

    is_terminal = False

    def print(self, *objects: Any, markup: bool | None = None, highlight: bool | None = None) -> None:
        for item in objects:
            if isinstance(item, PlainTable):
                sys.stdout.write("\n".join(item.lines()) + "\n")
            else:
                text = str(item)
                sys.stdout.write((text if markup is False else _plain(text)) + "\n")

    def print_json(self, json: str | None = None) -> None:
        sys.stdout.write(_dump(json) + "\n")


def _dump(text: str | None) -> str:
    return json.dumps(json.loads(text or "null"), indent=2)


def rich_available() -> bool:
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True


def make_console() -> Output:
    """rich's console if rich is installed (a terminal keeps its width; piped output, e.g. CI logs or `| tee`,
    gets a width that fits the tables), else the plain one."""
    if not rich_available():
        return PlainConsole()
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=150)


def make_table(title: str | None = None, *, show_header: bool = True, plain: bool | None = None) -> Any:
    """A rich `Table` (or a `PlainTable` without rich, or with `plain=True`); see `OutputTable`."""
    if plain or (plain is None and not rich_available()):
        return PlainTable(title, show_header=show_header)
    from rich.table import Table

    return Table(title=title, show_header=show_header)


def table_for(console: Output, title: str | None = None, *, show_header: bool = True) -> Any:
    """A table `console` can print: a plain one for the plain console."""
    return make_table(title, show_header=show_header, plain=True if isinstance(console, PlainConsole) else None)


def escape(text: str) -> str:
    """`text` shown verbatim, never read as markup (`[mm-processor <env>]` looks like a rich tag)."""
    if not rich_available():
        return text
    from rich.markup import escape as rich_escape

    return rich_escape(text)
