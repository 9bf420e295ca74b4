"""`rtc history show|verify` and `rtc node restore --from-swarm`: a node's block history in Swarm."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .output import add_json, emit, progress

HISTORY_HELP = """\
which history: --home is a devnet folder (its node --node, default 0) or one node's home;
the node's rtc.json names its Swarm (an embedded store folder or a Bee URL), its
config/history_key signs its feed, and its genesis names the chain. --owner reads the
feed of another node (its 20-byte address, printed by `rtc history show`).

examples:
  rtc history show --home /tmp/rtc                 the newest record of node0
  rtc history show --home /tmp/rtc --height 12 -J
  rtc history verify --home /tmp/rtc --from 1 --to 40
"""


class HistoryTarget:
    """A node home, its Swarm, the feed to read and the chain, resolved from --home/--node/--owner."""

    def __init__(self, args: argparse.Namespace) -> None:
        from rtc.cometbft import NodeHome
        from rtc.devnet.manifest import MANIFEST
        from rtc.history.config import history_signer, open_swarm
        from rtc.node.config import CONFIG_NAME, NodeConfig

        home = args.home.expanduser().resolve()
        if (home / MANIFEST).exists():
            from rtc.devnet import Devnet

            home = Path(Devnet.load(home).node(args.node).home)
        self.home = home
        self.node_home = NodeHome(home)
        config = NodeConfig.load(home)
        if not config.swarm:
            raise ValueError(f"{home / CONFIG_NAME} names no Swarm store, so this node keeps no history")
        self.swarm = open_swarm(config.swarm, config.swarm_batch, home)
        self.genesis = self.node_home.genesis()
        self.chain_id = self.genesis.chain_id
        self.owner = bytes.fromhex(args.owner.removeprefix("0x")) if args.owner else history_signer(self.node_home).owner

    def reader(self) -> Any:
        from rtc.history.reader import HistoryReader

        return HistoryReader(self.swarm, self.owner, self.chain_id, self.genesis.initial_height)


def cmd_history_show(args: argparse.Namespace) -> int:
    target = HistoryTarget(args)
    reader = target.reader()
    head = reader.head()
    height = args.height or head.height
    located = reader.record_at(height)
    data = {"feed_owner": target.owner.hex(), "chain_id": target.chain_id, "newest_height": head.height,
            "newest_snapshot": head.snapshot, "reference": located.reference.hex(), "record": located.record.summary()}
    summary = located.record.summary()
    lines = [f"record {height} of chain {target.chain_id} (feed owner 0x{target.owner.hex()}), "
             f"newest uploaded: {head.height}",
             f"  reference   {located.reference.hex()}",
             f"  block hash  {summary['block_hash']}",
             f"  app_hash    {summary['app_hash']} (state after block {height})",
             f"  txs         {summary['txs']}, signed by {summary['signatures']} of {summary['validators']} validators",
             f"  previous    {summary['previous'] or '-'}",
             f"  snapshot    {json.dumps(head.snapshot) if head.snapshot else 'none yet'}"]
    emit(args, data, "\n".join(lines))
    return 0


def cmd_history_verify(args: argparse.Namespace) -> int:
    from rtc.history import HistoryError

    target = HistoryTarget(args)
    reader = target.reader()
    newest = reader.head().height
    last = min(args.to or newest, newest)
    first = args.from_height
    if not 1 <= first <= last:
        raise ValueError(f"--from {first} --to {last}: the history holds heights 1..{newest}")
    progress(f"fetching records {first}..{last} from {target.swarm!r}")
    records = reader.walk_back(reader.record_at(last), first)
    trusted = None if args.no_anchor else (
        bytes.fromhex(args.trust_hash) if args.trust_hash else target.genesis.validators_hash())
    lines = []
    try:
        for line in reader.verify(records, trusted):
            lines.append(f"  ✓ {line}")
    except HistoryError as exc:
        emit(args, {"ok": False, "verified": len(lines), "error": str(exc)}, "\n".join(lines + [f"  ✗ {exc}"]))
        return 1
    anchor = "no anchor (internal consistency only)" if trusted is None else f"validator set {trusted.hex()[:16]}…"
    lines.append(f"records {first}..{last} verified, trust anchored in the {anchor}; "
                 f"record {last}'s app_hash is committed by block {last + 1}")
    emit(args, {"ok": True, "from": first, "to": last, "verified": len(records)}, "\n".join(lines))
    return 0


RESTORE_ANCHORS = """\
nothing to check the history in Swarm against: its records are signed, but by the
validators the history itself names. Pass one of
  --trust-height H --trust-hash HASH   block H's hash, from a node you trust
                                       (`curl NODE_RPC/block?height=H`: result.block_id.hash)
  --anchor-genesis                     the genesis file's validator set (only while the
                                       set has not changed since genesis)
  --trust-on-first-use                 believe the history's own validators; what was
                                       trusted is printed, to compare with a node you trust"""


def _restore_anchor(args: argparse.Namespace, target: HistoryTarget) -> Any:
    from rtc.node.restore import TrustAnchor

    if (args.trust_hash is None) != (args.trust_height is None):
        raise ValueError("--trust-hash and --trust-height go together: the hash of block H, and H")
    given = [name for name, value in (("--trust-hash", args.trust_hash), ("--anchor-genesis", args.anchor_genesis),
                                      ("--trust-on-first-use", args.trust_on_first_use)) if value]
    if len(given) > 1:
        raise ValueError(f"pass one trust anchor, not {' and '.join(given)}")
    if args.trust_hash is not None:
        try:
            block_hash = bytes.fromhex(args.trust_hash.removeprefix("0x"))
        except ValueError:
            block_hash = b""
        if len(block_hash) != 32 or args.trust_height < 1:
            raise ValueError(f"--trust-height {args.trust_height} --trust-hash {args.trust_hash}: a block hash is 64 "
                             "hex digits and heights start at 1")
        return TrustAnchor.block(args.trust_height, block_hash)
    if args.anchor_genesis:
        return TrustAnchor.validator_set(target.genesis.validators_hash(), f"the genesis of {target.home}")
    if args.trust_on_first_use:
        return TrustAnchor.trust_on_first_use()
    raise ValueError(RESTORE_ANCHORS)


def cmd_node_restore(args: argparse.Namespace) -> int:
    from rtc.node.restore import bootstrap_cometbft, restore_state

    if not args.from_swarm:
        raise ValueError("say where to restore from: --from-swarm")
    target = HistoryTarget(args)
    anchor = _restore_anchor(args, target)
    restored = restore_state(target.home, target.swarm, target.owner, target.chain_id, anchor, progress)
    data = restored.to_json()
    text = (f"state restored to height {restored.height} (snapshot {restored.snapshot_height} + "
            f"{restored.replayed} blocks replayed), app_hash {restored.app_hash.hex()[:16]}…, "
            f"{restored.seconds:.1f}s\n{restored.trusted}")
    if not target.node_home.has_blocks():
        progress("CometBFT's data folder is empty too: bootstrapping its state at the restored height")
        peers = args.rpc_servers.split(",") if args.rpc_servers else _devnet_rpcs(args)
        bootstrap_cometbft(target.node_home, restored.height, restored.block_hash, restored.app_hash, peers)
        text += f"\nCometBFT bootstrapped at height {restored.height}; start the node and it block-syncs onward"
        data["cometbft_bootstrapped"] = True
    emit(args, data, text)
    return 0


def _devnet_rpcs(args: argparse.Namespace) -> list[str]:
    from rtc.devnet import Devnet
    from rtc.devnet.manifest import MANIFEST

    home = args.home.expanduser().resolve()
    if not (home / MANIFEST).exists():
        raise ValueError("CometBFT's state must be bootstrapped from peers: pass --rpc-servers URL,URL")
    devnet = Devnet.load(home)
    others = [n.rpc for i, n in enumerate(devnet.nodes) if i != args.node and devnet.running(i)]
    if len(others) < 2:
        raise ValueError("bootstrapping CometBFT needs two running peers to check the light blocks against")
    return others[:2]


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, required=True, help="a devnet folder or a node home")
    parser.add_argument("--node", type=int, default=0, metavar="INDEX", help="which devnet node (default 0)")
    parser.add_argument("--owner", metavar="HEX", help="read another node's feed: its 20-byte owner address")
    add_json(parser)


def add_history_parsers(commands: Any) -> None:
    history = commands.add_parser("history", help="a node's block history in Swarm: show and verify records",
                                  description="A node's block history in Swarm: one record per block, chained, "
                                              "with state snapshots; a feed names the newest.",
                                  epilog=HISTORY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = history.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="one record (default: the newest) and the newest snapshot")
    _add_target(show)
    show.add_argument("--height", type=int, help="the block whose record to show")
    show.set_defaults(func=cmd_history_show)
    verify = actions.add_parser("verify", help="check records A..B: contents, links, signatures, app_hashes")
    _add_target(verify)
    verify.add_argument("--from", dest="from_height", type=int, default=1, metavar="A")
    verify.add_argument("--to", type=int, metavar="B", help="default: the newest record")
    verify.add_argument("--trust-hash", metavar="HEX", help="the validator set trusted at A (default: the genesis file's)")
    verify.add_argument("--no-anchor", action="store_true", help="check only that the records are consistent")
    verify.set_defaults(func=cmd_history_verify)


def add_restore_parser(node_actions: Any) -> None:
    restore = node_actions.add_parser(
        "restore", help="rebuild a wiped node's state from Swarm: snapshot plus replayed records",
        description="Rebuild a node's state from its history in Swarm alone: the newest snapshot, then every later "
                    "block replayed, each checked against the signed headers, starting from a trust anchor you give. "
                    "If CometBFT's data folder is empty too, its state is bootstrapped at the restored height "
                    "(light client against two peers).")
    _add_target(restore)
    restore.add_argument("--from-swarm", action="store_true", help="restore from the node's Swarm history")
    restore.add_argument("--rpc-servers", metavar="URL,URL", help="two peers' RPC for bootstrapping CometBFT "
                         "(default: a devnet's other running nodes)")
    trust = restore.add_argument_group("trust anchor (one is required)")
    trust.add_argument("--trust-height", type=int, metavar="H", help="the height of the block --trust-hash names")
    trust.add_argument("--trust-hash", metavar="HASH",
                       help="block H's hash from a node you trust (its RPC's /block?height=H, result.block_id.hash)")
    trust.add_argument("--anchor-genesis", action="store_true",
                       help="require the snapshot's records to be signed by the genesis validator set")
    trust.add_argument("--trust-on-first-use", action="store_true",
                       help="believe the validators the history names; prints what it trusted")
    restore.set_defaults(func=cmd_node_restore)
