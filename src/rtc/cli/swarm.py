"""`rtc swarm hash|put|get`: Swarm references as Bee computes them, files in a local store or a Bee node."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .output import add_json as _add_json
from .output import emit as _emit
from .output import progress as _progress

SWARM_HELP = """\
where the data goes (put, get):
  --store DIR          an embedded chunk store in DIR (created on first use)
  --bee URL            a Bee node's API, e.g. http://localhost:1633; uploads also
                       need --batch ID (a usable postage batch of that node)
every chunk read back is checked against its address, whichever the source.

examples:
  rtc swarm hash record.json
  rtc swarm hash -J big.bin
  rtc swarm put record.json --store /tmp/swarm
  rtc swarm get 92672a47...630f --store /tmp/swarm -o record.json
  rtc swarm put record.json --bee http://localhost:1633 --batch 6b39...4f1e
"""


def _swarm_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report a Swarm failure in one line (exit 1) instead of a traceback."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from rtc.swarm import SwarmError

        try:
            return func(args)
        except SwarmError as exc:
            print(f"rtc: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    return wrapper


def _read_input(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()


def _reference(text: str) -> bytes:
    try:
        reference = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        reference = b""
    if len(reference) != 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Swarm reference (64 hex digits)")
    return reference


def _open(args: argparse.Namespace, *, upload: bool) -> Any:
    from rtc.swarm import BeeSwarm, LocalSwarm

    if args.store is not None:
        store = args.store.expanduser()
        if not upload and not (store / "data.mdb").exists():
            raise FileNotFoundError(f"there is no chunk store in {store} (`rtc swarm put FILE --store DIR` makes one)")
        return LocalSwarm.open(store)
    if upload and not args.batch:
        raise ValueError("uploading to a Bee node needs --batch ID (one of its usable postage batches)")
    return BeeSwarm(args.bee, args.batch or "", timeout=args.timeout)


def _where(args: argparse.Namespace) -> dict[str, str]:
    return {"store": str(args.store)} if args.store is not None else {"bee": args.bee}


@_swarm_errors
def cmd_swarm_hash(args: argparse.Namespace) -> int:
    from rtc.swarm.chunker import split

    data = _read_input(args.file)
    reference, chunks = split(data)
    _emit(args, {"reference": reference.hex(), "size": len(data), "chunks": chunks}, reference.hex())
    return 0


@_swarm_errors
def cmd_swarm_put(args: argparse.Namespace) -> int:
    from rtc.swarm import chunk_count

    data = _read_input(args.file)
    swarm = _open(args, upload=True)
    try:
        _progress(f"uploading {len(data)} bytes ({chunk_count(len(data))} chunks) to {swarm!r}")
        reference = swarm.upload(data)
    finally:
        swarm.close()
    _emit(args, {"reference": reference.hex(), "size": len(data), "chunks": chunk_count(len(data)), **_where(args)},
          reference.hex())
    return 0


@_swarm_errors
def cmd_swarm_get(args: argparse.Namespace) -> int:
    if args.json_output and args.output is None:
        raise ValueError("-J describes the download: use it with -o OUT (without -o the data goes to stdout)")
    swarm = _open(args, upload=False)
    try:
        data = swarm.download(args.reference)
    finally:
        swarm.close()
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    args.output.write_bytes(data)
    _emit(args, {"reference": args.reference.hex(), "size": len(data), "output": str(args.output), **_where(args)},
          f"{len(data)} bytes verified against {args.reference.hex()}, written to {args.output}")
    return 0


def add_swarm_parsers(commands: Any) -> None:
    """`rtc swarm hash|put|get`, registered from `rtc.cli.main.build_parser`."""
    swarm = commands.add_parser("swarm", help="Swarm references as Bee computes them; put and get files",
                                description="Compute Swarm references exactly as a Bee node does (POST /bytes, "
                                            "no encryption, redundancy 0), and store or fetch data in an embedded "
                                            "chunk store or a Bee node, every chunk verified.",
                                epilog=SWARM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = swarm.add_subparsers(dest="swarm_command", metavar="ACTION", required=True)

    hash_ = actions.add_parser("hash", help="the reference Bee would give a file, computed without storing it",
                               epilog=SWARM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    hash_.add_argument("file", metavar="FILE", help="the file ('-' for standard input)")
    _add_json(hash_)
    hash_.set_defaults(func=cmd_swarm_hash)

    put = actions.add_parser("put", help="store a file and print its reference", epilog=SWARM_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    put.add_argument("file", metavar="FILE", help="the file ('-' for standard input)")
    _add_where(put, upload=True)
    _add_json(put)
    put.set_defaults(func=cmd_swarm_put)

    get = actions.add_parser("get", help="fetch the data under a reference, every chunk verified", epilog=SWARM_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    get.add_argument("reference", metavar="REF", type=_reference, help="the reference (64 hex digits)")
    get.add_argument("-o", "--output", type=Path, metavar="OUT", help="write the data here (default: standard output)")
    _add_where(get, upload=False)
    _add_json(get)
    get.set_defaults(func=cmd_swarm_get)


def _add_where(parser: argparse.ArgumentParser, *, upload: bool) -> None:
    group = parser.add_argument_group("where (one of)")
    one = group.add_mutually_exclusive_group(required=True)
    one.add_argument("--store", type=Path, metavar="DIR", help="an embedded chunk store in DIR")
    one.add_argument("--bee", metavar="URL", help="a Bee node's API, e.g. http://localhost:1633")
    group.add_argument("--batch", metavar="ID", help="postage batch id for uploads to --bee" if upload else argparse.SUPPRESS)
    group.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="seconds to wait for each Bee request (default 60)")
