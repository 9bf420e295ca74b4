"""`rtc validator run` (a batch validator's daemon) and `rtc validation status` (how far a cluster's
batch validation has got: checkpoints, their validators and the lag)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .output import add_json, emit

STATUS_HELP = """\
which cluster: --home is a devnet folder (its contracts, cluster and first running node), or
name them: --eth-rpc URL --validation ADDRESS --cluster ID --node URL.

examples:
  rtc validation status --home /tmp/rtc
  rtc validation status --home /tmp/rtc -J | jq .lag_txs
"""


def cmd_validator_run(args: argparse.Namespace) -> int:
    import logging

    from rtc.validator.daemon import run_validator

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_validator(args.home)


def cmd_validation_status(args: argparse.Namespace) -> int:
    from rtc.client.validation import read_status
    from rtc.cometbft import RPC
    from rtc.ethereum.validation import Validation

    eth_rpc, address, cluster_id, node = _target(args)
    validation = Validation.connect(eth_rpc, address)
    with RPC(node, timeout=10) as rpc:
        status = read_status(validation, cluster_id, rpc)
    lag_txs = f"{status.lag_txs}" + ("" if status.lag_txs_exact else "+")
    lines = [f"cluster {status.cluster_id}: head {status.head_height}, validated {status.validated_height} "
             f"(lag {status.lag_blocks} blocks, {lag_txs} transactions)"]
    if status.checkpoints:
        lines.append(f"{'checkpoint':>10}  {'status':10} {'validators':16} {'endorsed':>8}  app_hash")
        for checkpoint in status.checkpoints:
            drawn = ",".join(str(n) for n in checkpoint.validators) or "-"
            endorsed = f"{checkpoint.endorsements}/{len(checkpoint.validators)}" if checkpoint.validators else "-"
            lines.append(f"{checkpoint.height:>10}  {checkpoint.status:10} {drawn:16} {endorsed:>8}  "
                         f"{checkpoint.app_hash.hex()[:16]}…")
    else:
        lines.append("no checkpoint posted yet")
    emit(args, status.to_json(), "\n".join(lines))
    return 0


def _target(args: argparse.Namespace) -> tuple[str, str, int, str]:
    """(Ethereum endpoint, Validation contract, cluster id, a node's RPC) from --home or the explicit options."""
    if args.home is not None:
        from rtc.devnet import Devnet, DevnetError

        devnet = Devnet.load(args.home)
        if devnet.ethereum is None or not devnet.ethereum.validation:
            raise DevnetError(f"the devnet in {args.home} has no Validation contract (it was made before batch "
                              "validation existed); make a new one with `rtc devnet up`")
        running = [n.rpc for i, n in enumerate(devnet.nodes) if devnet.running(i)]
        if not running:
            raise DevnetError(f"no node of the devnet in {args.home} is running; start it with `rtc devnet up`")
        return devnet.ethereum.url, devnet.ethereum.validation, devnet.ethereum.cluster_id, running[0]
    missing = [name for name in ("eth_rpc", "validation", "cluster", "node") if getattr(args, name) is None]
    if missing:
        raise ValueError("say which cluster: --home DIR (a devnet), or all of --eth-rpc, --validation, --cluster "
                         f"and --node (missing: {', '.join('--' + m.replace('_', '-') for m in missing)})")
    return args.eth_rpc, args.validation, args.cluster, args.node


def add_validation_parsers(commands: argparse._SubParsersAction) -> None:
    validator = commands.add_parser(
        "validator", help="run a batch validator: re-execute drawn checkpoints from Swarm and endorse them",
        description="A batch validator is a node outside the cluster, with a deposit in the Registry, enrolled in "
                    "the Validation contract. Its daemon watches for the checkpoints it is drawn for, re-executes "
                    "the cluster's history from Swarm with the cluster's code and genesis, and endorses the "
                    "checkpoint on Ethereum when its own app_hash matches (docs/validation.md).")
    actions = validator.add_subparsers(dest="validator_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="watch the contract, re-execute and endorse until stopped")
    run.add_argument("--home", type=Path, required=True, help="the validator's home (holds validator.json and "
                     "config/attester_key; `rtc devnet up --validators N` makes them)")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_validator_run)

    validation = commands.add_parser(
        "validation", help="how far batch validation of a cluster has got: checkpoints and the lag",
        description="Checkpoints, the validators drawn for them, validated_height and the lag behind the head "
                    "in blocks and in clients' transactions.", epilog=STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    validation_actions = validation.add_subparsers(dest="validation_command", metavar="ACTION", required=True)
    status = validation_actions.add_parser("status", help="checkpoints, validators and the lag", epilog=STATUS_HELP,
                                           formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--home", type=Path, help="a devnet's folder")
    status.add_argument("--eth-rpc", metavar="URL", help="an Ethereum endpoint")
    status.add_argument("--validation", metavar="ADDRESS", help="the Validation contract")
    status.add_argument("--cluster", type=int, metavar="ID", help="the cluster id in the Registry")
    status.add_argument("--node", metavar="URL", help="a node's RPC endpoint, to read the head and count transactions")
    add_json(status)
    status.set_defaults(func=cmd_validation_status)
