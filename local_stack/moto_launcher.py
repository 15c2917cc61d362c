"""Runs moto's server (its own process, so it gets its own CPU) with SQS FIFO made faithful.

The fixes themselves live in `local_stack.moto_fixes`.

Usage: python -m local_stack.moto_launcher <port> [host]
"""

from __future__ import annotations

import logging
import sys

from local_stack import moto_fixes


def main() -> None:
    port = sys.argv[1]
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    moto_fixes.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main  # noqa: PLC0415

    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main()
