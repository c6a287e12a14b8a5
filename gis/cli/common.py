"""What every `geoioc` command module shares: the consoles, the one-line error, the progress bar.

It lives apart from gis/cli/__init__.py (which assembles the commands) so that command modules
import it and never the package that imports them: no import cycle.
"""

from __future__ import annotations

import getpass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gis.settings import get_settings

#: Results go to stdout (scripts capture them); warnings, errors and progress to stderr.
console = Console()
err = Console(stderr=True)


class CliError(Exception):
    """An error to show the user as one line (no traceback); `main()` exits with status 2."""


def fail(message: str) -> CliError:
    """The CliError to raise (`raise fail(...)`), so callers keep `raise` visible to readers."""
    return CliError(message)


def progress_bar() -> Progress:
    """A progress bar on stderr that stays when done, so a log shows how long each step took."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=False)


def actor() -> str:
    """Who the audit log names for a command-line action: `cli:<OS user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def safe_url() -> str:
    """The database as `name on host:port`: enough to recognise it, without the password."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(get_settings().database_url)
    return f"{info.get('dbname')} on {info.get('host')}:{info.get('port', 5432)}"
