"""`python -m rtc.validator --home DIR`: run one batch validator (what `rtc validator run` does)."""

import argparse
import logging
import sys
from pathlib import Path

from .daemon import run_validator


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rtc.validator", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the validator's home (holds validator.json)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_validator(args.home)


if __name__ == "__main__":
    sys.exit(main())
