"""`python -m rtc.node --home DIR`: run one node's state machine (what `rtc node run` does)."""

import argparse
import logging
import sys
from pathlib import Path

from .runner import run_node


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rtc.node", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the node's home (holds rtc.json)")
    parser.add_argument("--eth-rpc", metavar="URL", help="this node's Ethereum endpoint (default: eth_rpc in rtc.json)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per RPC request drowns what matters
    return run_node(args.home, args.eth_rpc)


if __name__ == "__main__":
    sys.exit(main())
