"""`rtc`: run local clusters, call backends, inspect components.

Progress goes to stderr and results to stdout, so `--json` output can be piped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from .history import add_history_parsers, add_restore_parser
from .operator import add_cluster_parsers, add_operator_parsers
from .output import add_json as _add_json
from .output import emit as _emit
from .output import progress as _progress

EXAMPLES = """\
examples:
  rtc devnet up --nodes 4 --app build/wasm/stock.wasm --home /tmp/rtc --validators 2 --detach
  rtc call --home /tmp/rtc update_high symbol=AAPL value=187.5
  rtc call --home /tmp/rtc '{"function": "update_high", "symbol": "AAPL", "value": 190}' --verify
  rtc call --home /tmp/rtc update_high symbol=AAPL value=191 --verify --require-validated
  rtc query --home /tmp/rtc get_high symbol=AAPL
  rtc validation status --home /tmp/rtc
  rtc dispute list --home /tmp/rtc
  rtc devnet status --home /tmp/rtc
  rtc devnet down --home /tmp/rtc
"""


# -- devnet -----------------------------------------------------------------------------


def cmd_devnet_up(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.create(args.home, args.nodes, args.app, base_port=args.base_port, progress=_progress,
                           eth_rpc=args.eth_rpc, validators=args.validators, cartel_app=args.cartel_app,
                           node_apps=dict(args.node_app or []), core=args.core)
    started = time.monotonic()
    try:
        devnet.start(progress=_progress, timeout=args.timeout)
    except BaseException:
        devnet.stop()
        raise
    _progress(f"{len(devnet.nodes)} nodes producing blocks ({time.monotonic() - started:.1f}s)")
    _emit(args, devnet.describe(), _describe_text(devnet))
    if args.detach:
        print(f"\nrunning in the background; stop with: rtc devnet down --home {devnet.home}", file=sys.stderr)
        return 0
    print("\npress Ctrl-C to stop the cluster", file=sys.stderr)
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop:
        time.sleep(0.2)
    _progress("stopping the cluster")
    devnet.stop()
    return 0


def _node_app(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=COMPONENT.wasm (for example node2=bad.wasm)")
    return name, Path(path)


def _describe_text(devnet: Any) -> str:
    lines = [f"chain {devnet.chain_id}, backend code hash {devnet.code_hash[:16]}…", "RPC endpoints:"]
    lines += [f"  {node.name}  {node.rpc}" + (f"  FAULT INJECTION: runs {node.fault_app}" if node.fault_app else "")
              for node in devnet.nodes]
    if devnet.validators:
        lines.append("batch validators (outside the cluster; `rtc validation status --home` shows their work):")
        lines += [f"  {v.name}  node {v.node_id} in the Registry, home {v.home}" for v in devnet.validators]
    return "\n".join(lines)


def cmd_devnet_status(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.load(args.home)
    statuses = devnet.status()
    powers = devnet.voting_powers()
    data = {
        "nodes": [
            {"name": s.name, "rpc": s.rpc, "height": s.height, "app_hash": s.app_hash, "running": s.running,
             "voting_power": powers.get(s.name, 0)}
            for s in statuses
        ],
        "validators": [{"name": v.name, "node_id": v.node_id, "running": devnet.validator_running(i), "home": v.home}
                       for i, v in enumerate(devnet.validators)],
    }
    rows = [f"{'node':8} {'height':>8}  {'app_hash':18} {'power':>5}  rpc"]
    for s in statuses:
        height = "-" if s.height is None else str(s.height)
        app_hash = (s.app_hash or "-")[:16]
        state = "" if s.running else "  (stopped)"
        rows.append(f"{s.name:8} {height:>8}  {app_hash:18} {powers.get(s.name, 0):>5}  {s.rpc}{state}")
    for validator in data["validators"]:
        state = "running" if validator["running"] else "stopped"
        rows.append(f"{validator['name']:10} batch validator, node {validator['node_id']} in the Registry, {state}")
    _emit(args, data, "\n".join(rows))
    return 0


def cmd_devnet_down(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.load(args.home)
    _progress(f"stopping {len(devnet.nodes)} nodes")
    devnet.stop()
    print("stopped", file=sys.stderr)
    return 0


def cmd_devnet_add_node(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.load(args.home)
    info = devnet.add_node(progress=_progress, timeout=args.timeout, state_sync=args.state_sync)
    _progress(f"{info.name} registered; it becomes a validator with the next Ethereum sync "
              f"(watch `rtc devnet status --home {devnet.home}`)")
    _emit(args, {"name": info.name, "rpc": info.rpc, "home": info.home}, f"{info.name}  {info.rpc}")
    return 0


def cmd_devnet_stop_node(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.load(args.home)
    devnet.stop_node(args.node, signal.SIGKILL if args.kill else signal.SIGTERM)
    _progress(f"{devnet.node(args.node).name} stopped")
    return 0


def cmd_devnet_start_node(args: argparse.Namespace) -> int:
    from rtc.devnet import Devnet

    devnet = Devnet.load(args.home)
    devnet.start_node(args.node, progress=_progress)
    return 0


# -- calls ------------------------------------------------------------------------------


def _node_urls(args: argparse.Namespace) -> list[str]:
    """Every node to use, in order of preference: the --node URLs, or all of a devnet's nodes
    (running ones first), so a client can fail over when one stops."""
    if args.node:
        return list(dict.fromkeys(args.node))
    from rtc.devnet import Devnet, DevnetError

    if args.home is None:
        raise DevnetError("say which cluster: --home DIR (a devnet) or --node URL (an RPC endpoint; repeat it for "
                          "several nodes of one cluster)")
    devnet = Devnet.load(args.home)
    running = [devnet.running(i) for i in range(len(devnet.nodes))]
    if not any(running):
        raise DevnetError(f"no node of the devnet in {args.home} is running; start it with `rtc devnet up`")
    return [n.rpc for n, up in zip(devnet.nodes, running) if up] + [n.rpc for n, up in zip(devnet.nodes, running) if not up]


def _parse_call(args: argparse.Namespace) -> dict[str, Any]:
    """FUNCTION NAME=VALUE..., or the whole call as one JSON object. A key given twice is refused
    (a parser that keeps the last one would send a call other than the one written)."""
    from rtc.protocol import strict_json

    if not args.function:
        raise SystemExit("rtc: name the function to call, or give the whole call as JSON: "
                         "'{\"function\": \"sum\", \"x\": 5, \"y\": 3}'")
    if args.function.lstrip().startswith("{"):
        if args.arguments:
            raise SystemExit("rtc: a call given as JSON takes no NAME=VALUE arguments; put them in the object")
        try:
            call = strict_json(args.function)
        except ValueError as exc:
            raise SystemExit(f"rtc: the call is not valid JSON: {exc}") from None
        if not isinstance(call, dict) or "function" not in call:
            raise SystemExit('rtc: a call is an object like {"function": "sum", "x": 5, "y": 3}')
        return call
    call: dict[str, Any] = {"function": args.function}
    for item in args.arguments:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"rtc: argument {item!r} is not NAME=VALUE")
        if name in call:
            raise SystemExit(f"rtc: {name!r} is given twice; give each argument once"
                             + (" (the function is the first word)" if name == "function" else ""))
        try:
            json.loads(raw)
        except ValueError:
            call[name] = raw  # a bare word is a string: symbol=AAPL
            continue
        try:
            call[name] = strict_json(raw)
        except ValueError as exc:
            raise SystemExit(f"rtc: argument {name!r}: {exc}") from None
    return call


def cmd_call(args: argparse.Namespace) -> int:
    from rtc.client import AsyncClient, CallRejected

    call = _parse_call(args)
    urls = _node_urls(args)
    key = _client_key(args.key)

    async def go() -> Any:
        devnet = _devnet(args)
        trust = _trust_policy(args, devnet) if args.verify else None
        with _devnet_history(devnet if args.verify else None) as history:
            async with AsyncClient(urls, trust, history) as client:
                session = client.session(key, bytes.fromhex(args.session) if args.session else None, args.counter)
                result = await session.call_and_wait(call, timeout=args.timeout)
                if not args.verify:
                    return result, None
                return result, await _receipt(args, client, session.session_key, result.counter)

    try:
        result, receipt = asyncio.run(go())
    except CallRejected as exc:
        _emit(args, {"status": "rejected", "code": exc.code, "rule": exc.rule, "error": exc.log},
              f"rejected before ordering ({exc.rule}): {exc.log}")
        return 2
    if receipt is not None:
        return _show_receipt(args, receipt)
    _emit(args, result.to_json(), _result_text(result))
    return 0 if result.ok else 1


async def _receipt(args: argparse.Namespace, client: Any, session: bytes, counter: int) -> Any:
    """The receipt; with --require-validated, once batch validators re-executed the result's block
    (or when the timeout ends that wait: `_show_receipt` says so)."""
    from rtc.client import VerificationFailed

    if not getattr(args, "require_validated", False):
        return await client.receipt(session, counter, timeout=args.timeout)
    try:
        return await client.verified(session, counter, timeout=args.timeout, validated=True)
    except VerificationFailed as exc:
        return exc.receipt


def _show_receipt(args: argparse.Namespace, receipt: Any) -> int:
    """Only a verified value is shown; when a check fails, the checks are shown instead of the value."""
    if not receipt.ok:
        _emit(args, receipt.to_json(), "NOT verified, so the node's answer is not shown\n" + _receipt_text(receipt))
        return 3
    if getattr(args, "require_validated", False) and not receipt.validated:
        lag = receipt.validation
        why = f" (lag {lag.lag_blocks} blocks, {lag.lag_txs} transactions)" if lag is not None else ""
        _emit(args, receipt.to_json(), f"verified, but NOT validated within {args.timeout:.0f} s{why}, so the value "
                                       "is not shown\n" + _receipt_text(receipt))
        return 4
    _emit(args, receipt.to_json(), _result_text(receipt.result) + "\n" + _receipt_text(receipt))
    return 0 if receipt.result.ok else 1


def _devnet(args: argparse.Namespace) -> Any:
    if getattr(args, "home", None) is None:
        return None
    from rtc.devnet import Devnet

    return Devnet.load(args.home)


def _trust_policy(args: argparse.Namespace, devnet: Any) -> Any:
    """The flags, or else the devnet's own contract and genesis file, mapped onto a TrustPolicy:
    the node being checked is trusted for nothing it can forge."""
    from rtc.client import ContractCheck, TrustPolicy, ValidationCheck

    contract_flags = (args.eth_rpc, args.registry, args.cluster_id)
    contract = None
    if any(flag is not None for flag in contract_flags):
        if any(flag is None for flag in contract_flags):
            raise SystemExit("rtc: --eth-rpc URL, --registry ADDRESS and --cluster-id N go together")
        contract = ContractCheck.connect(*contract_flags)
    elif devnet is not None and devnet.ethereum is not None:
        contract = ContractCheck.connect(devnet.ethereum.url, devnet.ethereum.registry, devnet.ethereum.cluster_id)
    validation = None
    if args.validation is not None:
        if any(flag is None for flag in contract_flags):
            raise SystemExit("rtc: --validation ADDRESS needs --eth-rpc, --registry and --cluster-id")
        validation = ValidationCheck.connect(args.eth_rpc, args.validation, args.registry, args.cluster_id)
    elif contract is not None and devnet is not None and devnet.ethereum is not None and devnet.ethereum.validation:
        validation = ValidationCheck.connect(devnet.ethereum.url, devnet.ethereum.validation, devnet.ethereum.registry,
                                             devnet.ethereum.cluster_id)
    if getattr(args, "require_validated", False) and validation is None:
        raise SystemExit("rtc: --require-validated needs the cluster's Validation contract: --validation ADDRESS "
                         "(with the Registry flags), or --home of a devnet")
    policy = TrustPolicy.choose(
        chain_id=devnet.chain_id if devnet is not None else None,  # the devnet's manifest, not the node's word
        validators_hash=bytes.fromhex(args.trust_hash) if args.trust_hash else None,
        contract=contract,
        genesis_file=Path(devnet.nodes[0].home) / "config" / "genesis.json" if devnet is not None else None,
        trust_on_first_use=args.trust_on_first_use).with_validation(validation)
    if policy.trust_on_first_use:
        print("rtc: trusting the validator set in the genesis this node serves (--trust-on-first-use); pin it with "
              "--trust-hash, or check the signers in the Registry with --eth-rpc, --registry and --cluster-id",
              file=sys.stderr)
    return policy


def _add_trust_flags(parser: argparse.ArgumentParser) -> None:
    """What --verify rests on: a devnet's own genesis file and contract (--home), or these flags."""
    parser.add_argument("--trust-hash", metavar="HEX", help="the validator set hash to trust (default with --home: "
                        "the devnet's genesis file)")
    parser.add_argument("--trust-on-first-use", action="store_true", help="trust the validator set of the genesis "
                        "the node itself serves (only as good as that node; the receipt names this assumption); "
                        "without --home, --trust-hash or the Registry flags, --verify needs it")
    parser.add_argument("--require-validated", action="store_true", help="with --verify: wait (up to --timeout) "
                        "until batch validators outside the cluster have re-executed the result's block; show the "
                        "value only then (exit 4 naming the lag otherwise)")
    _add_contract_flags(parser)


def _add_contract_flags(parser: argparse.ArgumentParser,
                        title: str = "verify against the Registry contract (default for a devnet with an Ethereum side)"
                        ) -> None:
    """Where the cluster is registered: then verification checks the signers' membership and deposits."""
    group = parser.add_argument_group(title)
    group.add_argument("--eth-rpc", metavar="URL", help="your own Ethereum JSON-RPC endpoint")
    group.add_argument("--registry", metavar="ADDRESS", help="the Registry contract's address")
    group.add_argument("--cluster-id", type=int, metavar="N", help="the cluster this node belongs to")
    group.add_argument("--validation", metavar="ADDRESS", help="the cluster's Validation contract: the receipt then "
                       "shows the members' attestations and the batch validation lag (a devnet's, with --home)")


@contextlib.contextmanager
def _devnet_history(devnet: Any) -> Iterator[Any]:
    """A devnet node's history reader (records are the same bytes from every node), or None;
    its store is closed afterwards (an embedded store may be opened once per process)."""
    if devnet is None or not devnet.swarm.store:
        yield None
        return
    from rtc.cometbft import NodeHome
    from rtc.history.config import feed_key_file, history_signer, open_swarm
    from rtc.history.reader import HistoryReader

    home = NodeHome(Path(devnet.nodes[0].home))
    if not feed_key_file(home).exists():
        yield None
        return
    swarm = open_swarm(devnet.swarm.store, devnet.swarm.batch)
    try:
        yield HistoryReader(swarm, history_signer(home).owner, devnet.chain_id, home.genesis().initial_height)
    finally:
        swarm.close()


def _receipt_text(receipt: Any) -> str:
    lines = ["verified:" if receipt.ok else "checks:"]
    for check in receipt.checks:
        mark = "✓" if check.passed else ("✗" if check.required else "·")
        lines.append(f"  {mark} {check.name}: {check.detail}")
        if check.assumption:
            lines.append(f"      rests on: {check.assumption}")
    if receipt.membership is not None:
        m = receipt.membership
        lines.append(f"  signers in Registry {m.registry}, cluster {m.cluster_id}, at Ethereum block {m.ethereum_block}:")
        lines += [f"    {row}" for row in m.lines()]
    lines.append(f"  trust: {receipt.trust}")
    lines.append(f"  (checked in {receipt.verify_ms:.1f} ms)")
    return "\n".join(lines)


def _result_text(result: Any) -> str:
    where = f"session {result.session.hex()[64:]}… counter {result.counter}, height {result.height}"
    if result.ok:
        latency = f", {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
        return f"{json.dumps(result.value)}\n  ({where}, fuel {result.fuel}{latency})"
    return f"{result.status}: {result.error}\n  ({where}, state unchanged)"


def _client_key(path: Path) -> Any:
    """The client's ed25519 key; created on first use (the public key names its sessions)."""
    from nacl.signing import SigningKey

    path = path.expanduser()
    if path.exists():
        return SigningKey(bytes.fromhex(path.read_text().strip()))
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(bytes(key).hex() + "\n")
    print(f"rtc: created client key {path}", file=sys.stderr)
    return key


def cmd_query(args: argparse.Namespace) -> int:
    from rtc.client import AsyncClient, CallRejected

    call = _parse_call(args)
    urls = _node_urls(args)

    async def go() -> Any:
        async with AsyncClient(urls) as client:
            return await client.query(call)

    try:
        answer = asyncio.run(go())
    except CallRejected as exc:
        _emit(args, {"status": "error", "code": exc.code, "rule": exc.rule, "error": exc.log}, f"error: {exc.log}")
        return 2
    _emit(args, answer.to_json(), json.dumps(answer.value))
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    from rtc.client import AsyncClient

    urls = _node_urls(args)
    session = bytes.fromhex(args.session)

    async def go() -> Any:
        devnet = _devnet(args)
        trust = _trust_policy(args, devnet) if args.verify else None
        with _devnet_history(devnet if args.verify else None) as history:
            async with AsyncClient(urls, trust, history) as client:
                if args.wait:
                    await client.wait_for_result(session, args.counter, timeout=args.timeout)
                if args.verify:
                    return await _receipt(args, client, session, args.counter)
                return await client.result(session, args.counter)

    answer = asyncio.run(go())
    if args.verify:
        return _show_receipt(args, answer)
    if answer is None:
        _emit(args, {"status": None}, f"no result for counter {args.counter} of this session (not sent, or not yet in a block)")
        return 1
    _emit(args, answer.to_json(), _result_text(answer))
    return 0


def cmd_cluster_members(args: argparse.Namespace) -> int:
    """Every node that ever joined the cluster: members, and those leaving with their cooling-off."""
    from rtc.devnet import Devnet
    from rtc.ethereum.registry import Registry

    names: dict[bytes, str] = {}
    where = (args.eth_rpc, args.registry, args.cluster_id)
    if any(flag is not None for flag in where):
        if any(flag is None for flag in where):
            raise ValueError("--eth-rpc URL, --registry ADDRESS and --cluster-id N go together")
        url, address, cluster_id = where
    elif args.home is not None:
        devnet = Devnet.load(args.home)
        if devnet.ethereum is None:
            raise ValueError(f"the devnet in {args.home} has no Ethereum side")
        url, address, cluster_id = devnet.ethereum.url, devnet.ethereum.registry, devnet.ethereum.cluster_id
        names = devnet.validator_names()
    else:
        raise ValueError("name the cluster: --home DEVNET, or --eth-rpc URL --registry ADDRESS --cluster-id N")
    registry = Registry.connect(url, address)
    block = registry.w3.eth.block_number
    ids = registry.contract.functions.cluster_history(cluster_id).call()
    nodes = [registry.node(int(node_id)) for node_id in ids]
    slashed = registry.slashed_wei([n.node_id for n in nodes])
    data = {"registry": registry.address, "cluster_id": cluster_id, "ethereum_block": block,
            "members": [{**n.to_json(), "name": names.get(n.validator_key), "member": n.member_until == 0,
                         "slashed_wei": slashed[n.node_id]} for n in nodes]}
    rows = [f"cluster {cluster_id} in Registry {registry.address} at Ethereum block {block}",
            f"{'node':8} {'id':>3}  {'deposit':>10}  {'slashed':>10}  {'status':9} {'cooling-off':34} operator"]
    for n in nodes:
        if n.status in ("leaving", "ejected"):
            left = n.withdrawable_block - block
            cooling = f"until block {n.withdrawable_block} ({left} to go)" if left > 0 else \
                f"over since block {n.withdrawable_block}"
        else:
            cooling = "-"
        rows.append(f"{names.get(n.validator_key, '?'):8} {n.node_id:>3}  {n.deposit_wei / 10**18:>6.2f} ETH  "
                    f"{slashed[n.node_id] / 10**18:>6.2f} ETH  {n.status:9} {cooling:34} {n.operator}")
    _emit(args, data, "\n".join(rows))
    return 0


def cmd_cluster_restore(args: argparse.Namespace) -> int:
    from rtc.devnet.restore import restore_cluster

    devnet = restore_cluster(args.source, args.home, args.nodes, args.base_port, progress=_progress)
    try:
        devnet.start(progress=_progress, timeout=args.timeout)
    except BaseException:
        devnet.stop()
        raise
    restored = devnet.restored_from()
    _emit(args, {**devnet.describe(), "restored_from": restored.to_json() if restored else None},
          _describe_text(devnet) + (f"\nrestored from cluster {restored.cluster_id} at its last valid checkpoint "
                                    f"{restored.height}; stop with: rtc devnet down --home {devnet.home}"
                                    if restored else ""))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from rtc.vm import Backend

    backend = Backend.from_file(args.component)
    entries = [entry.describe() for entry in backend.entry_points.values()]
    data = {"code_hash": backend.code_hash.hex(), "entry_points": entries}
    lines = [f"code hash {backend.code_hash.hex()}", "entry points:"]
    for entry in backend.entry_points.values():
        kind = "query" if entry.read_only else "call "
        lines.append(f"  {kind} {entry.signature()}")
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_node_run(args: argparse.Namespace) -> int:
    import logging

    from rtc.node.runner import run_node

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_node(args.home, args.eth_rpc)


# -- parser -----------------------------------------------------------------------------


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which cluster")
    group.add_argument("--home", type=Path, help="a devnet's folder (uses its first running node)")
    group.add_argument("--node", metavar="URL", action="append", help="a node's RPC endpoint, e.g. "
                       "http://127.0.0.1:26601; repeat it for several nodes of the cluster (the client fails over "
                       "between them and resends a call that a failed node swallowed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtc",
        description="Real-time clusters: WebAssembly backends on small BFT-replicated CometBFT clusters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    devnet = commands.add_parser("devnet", help="run a local cluster on loopback", description="Run a local cluster on loopback.")
    dev = devnet.add_subparsers(dest="devnet_command", metavar="ACTION", required=True)

    up = dev.add_parser("up", help="create and start a cluster", description=(
        "Generate keys, genesis and config for N nodes, start N CometBFT processes and N state machines, "
        "wait until blocks are produced and print the RPC endpoints."))
    up.add_argument("--nodes", type=int, default=4, help="number of validator nodes (1-16, default 4)")
    up.add_argument("--app", type=Path, required=True, metavar="COMPONENT.wasm", help="the backend component")
    up.add_argument("--home", type=Path, required=True, help="folder for the cluster (must not hold one already)")
    up.add_argument("--base-port", type=int, default=26600, help="first port; node i uses base+10i (p2p) and "
                    "base+10i+1 (RPC); ABCI is a unix socket in the node's home")
    up.add_argument("--detach", action="store_true", help="leave the cluster running in the background and return")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the first blocks")
    up.add_argument("--eth-rpc", metavar="URL", help="deploy the Registry on this existing chain instead of starting "
                    "anvil; it must have 17 funded accounts unlocked (anvil, hardhat or geth --dev)")
    up.add_argument("--validators", type=int, default=0, metavar="N", help="also register and run N batch "
                    "validators (0-7) outside the cluster: they re-execute every checkpoint from Swarm and endorse "
                    "it on Ethereum; `rtc validation status` shows the lag")
    up.add_argument("--core", choices=("python", "native", "mixed"), default="", help="what executes calls: the "
                    "Python reference, the compiled core, or mixed (even nodes native, odd ones Python; they must "
                    "agree on every app_hash). Default: RTC_CORE, else the compiled core when it is built")
    faults = up.add_argument_group("fault injection (a devnet only: to watch disputes catch a lie)")
    faults.add_argument("--cartel-app", type=Path, metavar="BAD.wasm", help="every node runs this component while "
                        "the Registry and the genesis name --app's code: a cartel lying about its code (try "
                        "build/wasm/stock-cartel.wasm with --app build/wasm/stock.wasm and --validators 4)")
    faults.add_argument("--node-app", type=_node_app, action="append", metavar="NAME=BAD.wasm", help="node NAME "
                        "runs this component instead (repeatable; wins over --cartel-app for that node)")
    _add_json(up)
    up.set_defaults(func=cmd_devnet_up)

    status = dev.add_parser("status", help="height, app_hash and RPC address of every node")
    status.add_argument("--home", type=Path, required=True)
    _add_json(status)
    status.set_defaults(func=cmd_devnet_status)

    down = dev.add_parser("down", help="stop every process the devnet started")
    down.add_argument("--home", type=Path, required=True)
    down.set_defaults(func=cmd_devnet_down)

    add_node = dev.add_parser("add-node", help="start one more node and register it in the contract", description=(
        "Start one more node that syncs the chain from the others, then register its validator key with a "
        "deposit in the Registry and ask to join the cluster, which the devnet's cluster owner approves. The next "
        "Ethereum sync makes it a validator: watch its "
        "voting power appear in `rtc devnet status`."))
    add_node.add_argument("--home", type=Path, required=True)
    add_node.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it to catch up")
    add_node.add_argument("--state-sync", action="store_true", help="start from a state snapshot the other nodes "
                          "serve (the same ones that are in Swarm) instead of replaying every block")
    _add_json(add_node)
    add_node.set_defaults(func=cmd_devnet_add_node)

    stop_node = dev.add_parser("stop-node", help="stop one node (both its processes)")
    stop_node.add_argument("--home", type=Path, required=True)
    stop_node.add_argument("--node", type=int, required=True, metavar="INDEX")
    stop_node.add_argument("--kill", action="store_true", help="SIGKILL instead of a clean stop (crash test)")
    stop_node.set_defaults(func=cmd_devnet_stop_node)

    start_node = dev.add_parser("start-node", help="start one stopped node; it catches up with the others")
    start_node.add_argument("--home", type=Path, required=True)
    start_node.add_argument("--node", type=int, required=True, metavar="INDEX")
    start_node.set_defaults(func=cmd_devnet_start_node)

    for name, func, help_text in (
        ("call", cmd_call, "submit a call as a transaction and wait for its block"),
        ("query", cmd_query, "run a read-only entry point against committed state"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text.capitalize() + ". "
                                  "Arguments are NAME=VALUE; VALUE is read as JSON when it parses (5, 1.5, true, [1,2], "
                                  "\"text\") and as a plain string otherwise (symbol=AAPL). Or give the whole call "
                                  "as one JSON object instead: '{\"function\": \"sum\", \"x\": 5, \"y\": 3}'.",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_target(sub)
        sub.add_argument("function", nargs="?", metavar="FUNCTION",
                         help="entry point name (snake_case), or the whole call as JSON")
        sub.add_argument("arguments", nargs="*", metavar="NAME=VALUE")
        sub.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the block")
        if name == "call":
            sub.add_argument("--key", type=Path, default=Path("~/.rtc/client.key"), help="client key file (created on first use)")
            sub.add_argument("--session", metavar="ID", help="session id (32 hex digits) to continue; default: a new session")
            sub.add_argument("--counter", type=int, default=0, metavar="K", help="this call's position in the session (default 0)")
            sub.add_argument("--verify", action="store_true", help="verify the result here (Merkle proof, commit "
                             "signatures, Registry, Swarm) and show each check; only a verified value is shown "
                             "(exit 3 when a check fails)")
            _add_trust_flags(sub)
        _add_json(sub)
        sub.set_defaults(func=func)

    result = commands.add_parser("result", help="fetch the result of a session's call by counter")
    _add_target(result)
    result.add_argument("--session", required=True, metavar="HEX", help="session key: client public key + session id (96 hex digits, printed by `rtc call -J`)")
    result.add_argument("--counter", type=int, required=True, metavar="K")
    result.add_argument("--wait", action="store_true", help="wait for a final result instead of reporting what is there")
    result.add_argument("--verify", action="store_true", help="verify the result here and show each check; only a "
                        "verified value is shown (exit 3 when a check fails)")
    _add_trust_flags(result)
    result.add_argument("--timeout", type=float, default=30.0)
    _add_json(result)
    result.set_defaults(func=cmd_result)

    cluster = commands.add_parser("cluster", help="the cluster as the Ethereum contract sees it; admit nodes")
    cluster_actions = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    members = cluster_actions.add_parser("members", help="member nodes with their deposits and cooling-off state")
    members.add_argument("--home", type=Path, help="a devnet's folder")
    _add_contract_flags(members, "or any cluster, in the Registry on an Ethereum chain")
    _add_json(members)
    members.set_defaults(func=cmd_cluster_members)
    add_cluster_parsers(cluster_actions)  # requests, approve, refuse
    restore = cluster_actions.add_parser(
        "restore", help="new members take over a convicted cluster from its last valid checkpoint",
        description="Start a new cluster in the same Registry for the same code, whose new members begin from "
                    "the last valid checkpoint of a cluster a dispute froze. The state is rebuilt from Swarm alone "
                    "(the convicted cluster's records replayed with the Registry's code, every app_hash checked, "
                    "the last against the validated checkpoint); the new chain goes on at the height after it, so "
                    "sessions continue from the last state that was proven right (docs/disputes.md).",
        epilog="example:\n  rtc cluster restore --from /tmp/cartel --home /tmp/restored\n"
               "  rtc call --home /tmp/restored update_high symbol=AAPL value=190 --verify",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="DEVNET",
                         help="the convicted cluster's devnet folder (its contracts, Swarm and code)")
    restore.add_argument("--home", type=Path, required=True, help="folder for the new cluster")
    restore.add_argument("--nodes", type=int, default=4, help="new members (default 4)")
    restore.add_argument("--base-port", type=int, default=26900, help="first port of the new nodes")
    restore.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the first blocks")
    _add_json(restore)
    restore.set_defaults(func=cmd_cluster_restore)

    inspect = commands.add_parser("inspect", help="list a component's entry points and their WIT types")
    inspect.add_argument("component", type=Path, metavar="COMPONENT.wasm")
    _add_json(inspect)
    inspect.set_defaults(func=cmd_inspect)

    node = commands.add_parser("node", help="run a node; register, ask to join, leave and withdraw its deposit on Ethereum",
                               description="Run a node's state machine, and act as its operator in the Registry "
                                           "contract: register with a deposit, ask to join, leave, withdraw, show "
                                           "its state.")
    node_actions = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    run = node_actions.add_parser("run", help="serve ABCI for the CometBFT of this node home")
    run.add_argument("--home", type=Path, required=True)
    run.add_argument("--eth-rpc", metavar="URL", help="this node's Ethereum endpoint, to check membership syncs "
                     "(default: eth_rpc in the home's rtc.json)")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(func=cmd_node_run)
    add_operator_parsers(node_actions)
    add_restore_parser(node_actions)
    add_history_parsers(commands)
    from .swarm import add_swarm_parsers  # rtc swarm hash|put|get
    from .disputes import add_dispute_parsers  # rtc dispute list|show
    from .validation import add_validation_parsers  # rtc validator run, rtc validation status

    add_validation_parsers(commands)
    add_dispute_parsers(commands)
    add_swarm_parsers(commands)
    return parser


# Errors that mean "the user can fix this", reported as one line. Named by module, so that main()
# imports nothing to catch them: an error whose module was never imported cannot have been raised.
USER_ERRORS = (
    ("rtc.devnet.manifest", "DevnetError"), ("rtc.cometbft.rpc", "RPCError"), ("rtc.vm.engine", "DeployError"),
    ("rtc.ethereum.anvil", "AnvilError"), ("rtc.ethereum.types", "ContractRefused"),
    ("websockets.exceptions", "WebSocketException"),
)


def _user_error(exc: BaseException) -> bool:
    # VerificationError is a ValueError: a failed check is reported, never passed over.
    if isinstance(exc, (FileNotFoundError, ValueError, TypeError)):
        return True
    for module, name in USER_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TimeoutError:
        print("rtc: timed out waiting for the node; is it running and producing blocks?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _user_error(exc):
            raise
        print(f"rtc: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
