"""`rtc dispute list` and `rtc dispute show`: the disputes about a cluster's state, and one
dispute's whole story (evidence, juries, votes, appeals, the ruling and what it took)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .output import add_json, emit

HELP = """\
which court: --home is a devnet folder (its Disputes contract and cluster), or name them:
--eth-rpc URL --disputes ADDRESS [--cluster ID].

examples:
  rtc dispute list --home /tmp/rtc
  rtc dispute list --home /tmp/rtc --json | jq '.[] | select(.status == "open")'
  rtc dispute show 1 --home /tmp/rtc
"""

def _court(args: argparse.Namespace) -> tuple[Any, int | None]:
    from rtc.ethereum.disputes import Disputes

    if args.home is not None:
        from rtc.devnet import Devnet, DevnetError

        devnet = Devnet.load(args.home)
        if devnet.ethereum is None or not devnet.ethereum.disputes:
            raise DevnetError(f"the devnet in {args.home} has no Disputes contract (it was made before disputes "
                              "existed); make a new one with `rtc devnet up`")
        return Disputes.connect(devnet.ethereum.url, devnet.ethereum.disputes), devnet.ethereum.cluster_id
    if args.eth_rpc is None or args.disputes is None:
        raise ValueError("say which court: --home DIR (a devnet), or --eth-rpc URL and --disputes ADDRESS")
    return Disputes.connect(args.eth_rpc, args.disputes), args.cluster


def _summary(disputes: Any, d: Any) -> dict[str, Any]:
    return {"id": d.dispute_id, "cluster_id": d.cluster_id, "height": d.height, "status": d.status_name,
            "disputer": d.disputer_address, "disputer_node": d.disputer, "claimed_app_hash": d.claimed_app_hash.hex(),
            "attested_app_hash": d.attested_app_hash.hex(), "base": d.base, "agreed": d.agreed,
            "phase": d.phase_name, "round": d.round,
            "slashed": [s.operator for s in disputes.slashes(d.dispute_id)]}


def cmd_dispute_list(args: argparse.Namespace) -> int:
    disputes, cluster = _court(args)
    rows = [_summary(disputes, d) for d in disputes.disputes_of(cluster)]
    lines = [f"{'id':>4}  {'cluster':>7}  {'height':>6}  {'status':8} {'phase':16} {'slashed':>7}  disputer"]
    lines += [f"{r['id']:>4}  {r['cluster_id']:>7}  {r['height']:>6}  {r['status']:8} {r['phase']:16} "
              f"{len(r['slashed']):>7}  {r['disputer']} (node {r['disputer_node']})" for r in rows]
    emit(args, rows, "\n".join(lines) if rows else "no disputes")
    return 0


def cmd_dispute_show(args: argparse.Namespace) -> int:
    disputes, _ = _court(args)
    d = disputes.dispute(args.id)
    if d is None:
        raise ValueError(f"there is no dispute {args.id} (`rtc dispute list` shows them)")
    story = disputes.story(args.id, from_block=max(0, d.opened_block - 1))
    slashes = disputes.slashes(args.id)
    data = {**_summary(disputes, d), "accused": disputes.accused(args.id), "bond_wei": d.bond_wei,
            "slashed_wei": d.slashed_wei, "bounty_wei": d.bounty_wei,
            "slashes": [{"node_id": s.node_id, "operator": s.operator, "amount_wei": s.amount_wei, "reason": s.reason}
                        for s in slashes],
            "story": [{"event": e.name, "block": e.block, **e.fields} for e in story]}
    lines = [f"dispute {d.dispute_id} about height {d.height} of cluster {d.cluster_id}: {d.status_name} "
             f"({d.phase_name})",
             f"  attested  {d.attested_app_hash.hex()}  by nodes {', '.join(map(str, data['accused']))}"
             + (" (more than 2/3 of the members)" if d.agreed else ""),
             f"  claimed   {d.claimed_app_hash.hex()}  by node {d.disputer} ({d.disputer_address}), "
             f"replaying from height {d.base}", "", "story:"]
    lines += [f"  block {e.block:>6}  {e.describe()}" for e in story]
    if slashes:
        lines += ["", "slashed:"] + [f"  node {s.node_id} ({s.operator}): {s.amount_wei / 10**18:.4f} ETH, {s.reason}"
                                     for s in slashes]
    emit(args, data, "\n".join(lines))
    return 0


def add_dispute_parsers(commands: argparse._SubParsersAction) -> None:
    dispute = commands.add_parser(
        "dispute", help="disputes about a cluster's state: list them, show one's story",
        description="A dispute says that members attested a wrong state. A jury of batch validators re-executes "
                    "the history from Swarm and votes (commit, then reveal); the ruling slashes whoever was wrong "
                    "(docs/disputes.md).", epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = dispute.add_subparsers(dest="dispute_command", metavar="ACTION", required=True)
    for name, helptext, func in (("list", "every dispute, its status and who was slashed", cmd_dispute_list),
                                 ("show", "one dispute's whole story, phase by phase", cmd_dispute_show)):
        action = actions.add_parser(name, help=helptext, epilog=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "show":
            action.add_argument("id", type=int, help="the dispute's id")
        action.add_argument("--home", type=Path, help="a devnet's folder")
        action.add_argument("--eth-rpc", metavar="URL", help="an Ethereum endpoint")
        action.add_argument("--disputes", metavar="ADDRESS", help="the Disputes contract")
        action.add_argument("--cluster", type=int, metavar="ID", help="only this cluster's disputes")
        add_json(action)
        action.set_defaults(func=func)
