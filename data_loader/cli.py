"""How every entry point runs: fire parses the flags, and bad input ends the process with one line, not a traceback.

    if __name__ == "__main__":
        run_cli(main)
"""
from __future__ import annotations

import sys
from typing import Any

import fire

from data_loader.jsonio import InputError


def run_cli(component: Any, errors: tuple[type[Exception], ...] = ()) -> None:
    """fire.Fire(component); an InputError (or one of `errors`) prints `error: <message>` on stderr and exits 1.

    The messages already name the file and record at fault, so the traceback would add nothing for the user.
    """
    try:
        fire.Fire(component)
    except (InputError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
