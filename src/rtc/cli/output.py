"""How every `rtc` command talks: progress on stderr, results on stdout as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """The result: `text` for people, or `data` as JSON with -J, so scripts can pipe it."""
    print(json.dumps(data, indent=2, sort_keys=True) if getattr(args, "json_output", False) else text)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", "--json-output", "-J", dest="json_output", action="store_true",
                        help="print machine-readable JSON (on stdout; progress stays on stderr)")
