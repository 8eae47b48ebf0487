"""Rich consoles for the CLI that never break a word when the output is piped.

Rich wraps at 80 columns when it is not writing to a terminal ("UNVERIFI⏎ED",
"duplicated intent name⏎'repair_service'"). Piped output gets a wide console and soft
wrapping (a line is as long as its text); a terminal keeps its own width.
"""

from __future__ import annotations

import sys

from rich.console import Console

PIPED_WIDTH = 240


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    isatty = getattr(stream, "isatty", None)
    tty = isatty is not None and isatty()
    return Console(stderr=stderr, soft_wrap=True, width=None if tty else PIPED_WIDTH)
