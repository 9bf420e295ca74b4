"""`make demo`: a 4-node cluster running the seed's stock example, driven by a client.

It starts a real devnet (CometBFT + our state machines) with two batch validators outside
the cluster, sends calls and a query, shows one call being refused before ordering and a
result verified by the client (with the members' attestations), shows the members'
deposits in the Ethereum contract, the batch validation lag falling to zero once the calls
stop, and a fifth node joining the validator set, and checks that every node reached the same
app_hash. Then it starts a second devnet whose members all run a lying build of the backend
(stock-cartel.wasm, while the Registry names stock.wasm) and shows the batch validators
catching it: a dispute, a jury's ruling, the cartel's deposits slashed, and a client refusing
the cartel's results. It stops everything it started.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from rtc.client import AsyncClient, CallRejected, ContractCheck, TrustPolicy, ValidationCheck
from rtc.client.validation import read_status
from rtc.cometbft import RPC, NodeHome
from rtc.devnet import Devnet
from rtc.history.config import history_signer, open_swarm
from rtc.history.reader import HistoryReader

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "build" / "demo"
APP = ROOT / "build" / "wasm" / "stock.wasm"
CARTEL_APP = ROOT / "build" / "wasm" / "stock-cartel.wasm"  # records 1% more for values of 1000 or more
CARTEL_HOME = ROOT / "build" / "demo-cartel"
QUOTES = [187.5, 189.25, 188.0, 191.75, 190.5]
VALIDATORS = 2


def say(text: str = "") -> None:
    print(text, flush=True)


def devnet_trust(devnet: Devnet) -> TrustPolicy:
    """What the demo's clients believe: the devnet's staked members, attestations and validation."""
    eth = devnet.ethereum
    contract = ContractCheck.connect(eth.url, eth.registry, eth.cluster_id)
    return TrustPolicy.registry(contract, chain_id=devnet.chain_id).with_validation(
        ValidationCheck.connect(eth.url, eth.validation, eth.registry, eth.cluster_id))


async def drive(devnet: Devnet, history: HistoryReader) -> None:
    urls = [node.rpc for node in devnet.nodes]
    say("\n-- the seed's client: update_high(symbol, value) on a 4-node cluster --")
    for i, quote in enumerate(QUOTES):
        url = urls[i % len(urls)]  # spread calls over the nodes: any node accepts transactions
        async with AsyncClient(url) as client:
            result = await client.call({"function": "update_high", "symbol": "AAPL", "value": quote})
        say(f"  update_high(AAPL, {quote:7.2f}) via {devnet.nodes[i % len(urls)].name} -> {result.value}"
            f"   height {result.height}, {result.latency_ms:.0f} ms, fuel {result.fuel}")
    say("\n-- a session: the client sends 6 quotes at once, shuffled over the 4 nodes --")
    nodes = [AsyncClient(url, devnet_trust(devnet), history) for url in urls]
    session = nodes[0].session()
    quotes = [192.0, 195.5, 193.25, 197.0, 196.0, 199.5]
    envelopes = [await session.envelope({"function": "update_high", "symbol": "MSFT", "value": q}) for q in quotes]
    order = [3, 5, 0, 4, 1, 2]
    for i, k in enumerate(order):
        await nodes[i % 4].broadcast(envelopes[k].encode())
        say(f"  sent counter {k} ({quotes[k]:.2f}) to {devnet.nodes[i % 4].name}")
    for k in range(len(quotes)):
        result = await session.result(k)
        say(f"  counter {k}: update_high(MSFT, {quotes[k]:.2f}) -> {result.value}   height {result.height}")
    say("  (each result is what sequential execution gives: call k ran after call k-1 on every node)")
    say("\n-- the client verifies the last result itself, trusting only the contracts on Ethereum --")
    receipt = await nodes[1].verified(session.session_key, len(quotes) - 1)
    say(f"  counter {len(quotes) - 1} -> {receipt.result.value}, proven at height {receipt.state_height}:")
    for check in receipt.checks:
        say(f"    {'✓' if check.passed else '·'} {check.name}: {check.detail}")
    for line in receipt.membership.lines() if receipt.membership else []:
        say(f"      {line}")
    say(f"  (verified in {receipt.verify_ms:.1f} ms; trust: {receipt.trust})")
    for node in nodes:
        await node.aclose()
    async with AsyncClient(urls[-1]) as client:
        answer = await client.query({"function": "get_high", "symbol": "AAPL"})
        say(f"\n  query get_high(AAPL) on {devnet.nodes[-1].name} -> {answer.value}")
        say("\n-- a call with a wrong argument type is refused before it is ordered --")
        try:
            await client.call({"function": "update_high", "symbol": "AAPL", "value": "a lot"})
        except CallRejected as exc:
            say(f"  refused ({exc.rule}): {exc.log}")
        say("\n-- the backend answers with an error value; it is recorded in the block like any result --")
        result = await client.call({"function": "update_high", "symbol": "", "value": 1.0})
        say(f"  update_high('', 1.0) -> {result.value} at height {result.height}")


def show_validation(devnet: Devnet, timeout: float = 120.0) -> None:
    """The lag of batch validation, until no client transaction is left unvalidated."""
    from rtc.ethereum.validation import Validation

    say(f"\n-- batch validation: {VALIDATORS} validators outside the cluster re-execute every checkpoint "
        "from Swarm and endorse it on Ethereum --")
    validation = Validation.connect(devnet.ethereum.url, devnet.ethereum.validation)
    started, shown = time.monotonic(), None
    with RPC(devnet.nodes[0].rpc) as rpc:
        while True:
            status = read_status(validation, devnet.ethereum.cluster_id, rpc)
            line = (f"  head {status.head_height}, validated {status.validated_height}: lag {status.lag_blocks} "
                    f"blocks, {status.lag_txs} transactions")
            if line != shown:
                say(line)
                shown = line
            if status.lag_txs == 0 and status.validated_height:
                break
            if time.monotonic() - started > timeout:
                say(f"  validation did not catch up within {timeout:.0f} s; see {devnet.home / 'logs'}")
                return
            time.sleep(1.0)
    for checkpoint in status.checkpoints[:3]:
        say(f"  checkpoint {checkpoint.height}: {checkpoint.status}, validators {list(checkpoint.validators)} "
            f"({checkpoint.endorsements} endorsements), app_hash {checkpoint.app_hash.hex()[:16]}…")
    say(f"  every call is re-executed and endorsed {time.monotonic() - started:.1f} s after the last one")


def node_history(devnet: Devnet) -> HistoryReader:
    home = NodeHome(Path(devnet.nodes[0].home))
    return HistoryReader(open_swarm(devnet.swarm.store), history_signer(home).owner, devnet.chain_id)


def show_history(reader: HistoryReader) -> None:
    say("\n-- every block's record is in Swarm, chained and signed; snapshots for restoring a node --")
    head = reader.head()
    records = reader.walk_back(reader.record_at(head.height), 1)
    checked = sum(1 for _ in reader.verify(records, None))
    say(f"  node0's feed: records 1..{head.height} ({checked} checked: contents, links, commit signatures)")
    if head.snapshot:
        manifest = reader.manifest(bytes.fromhex(head.snapshot["manifest"]))
        say(f"  newest snapshot: height {manifest.height}, {manifest.entries} keys, app_hash "
            f"{manifest.app_hash.hex()[:16]}…")
    say(f"  (Bee would store record {head.height} at {head.record.hex()})")


def show_a_node_joining(devnet: Devnet) -> None:
    say("\n-- a fifth node joins: it syncs the chain, registers with a deposit, and the next Ethereum sync"
        " makes it a validator --")
    info = devnet.add_node(progress=lambda m: say(f"  {m}"))
    registered = time.monotonic()
    while devnet.voting_powers().get(info.name, 0) == 0:
        if time.monotonic() - registered > 60:
            say(f"  {info.name} did not become a validator within 60 s; see {devnet.home / 'logs'}")
            return
        time.sleep(0.3)
    powers = devnet.voting_powers()
    say(f"  {info.name} is a validator {time.monotonic() - registered:.1f} s after registering; voting power: "
        + ", ".join(f"{name} {power}" for name, power in powers.items()))


def show_a_cartel_caught(timeout: float = 180.0) -> bool:
    """A cluster whose every member lies about its code, caught by validators outside it."""
    from rtc.client import Client, VerificationFailed
    from rtc.ethereum.disputes import OPEN, Disputes
    from rtc.ethereum.registry import Registry

    say("\n-- a cartel: 4 members run stock-cartel.wasm (it records 1% more for values of 1000 or more) while the Registry "
        "and the genesis name stock.wasm --")
    Devnet.remove(CARTEL_HOME)
    devnet = Devnet.create(CARTEL_HOME, 4, APP, base_port=26800, progress=lambda m: say(f"  {m}"), validators=4,
                           cartel_app=CARTEL_APP)
    try:
        devnet.start(progress=lambda m: say(f"  {m}"))
        eth = devnet.ethereum
        disputes = Disputes.connect(eth.url, eth.disputes)
        with Client([n.rpc for n in devnet.nodes], trust=devnet_trust(devnet)) as client:
            session = client.session()
            lied = time.monotonic()
            counter = session.call({"function": "update_high", "symbol": "ACME", "value": 1000.0})
            value = client.wait_for_result(session.session_key, counter).record.value
            say(f"  update_high(ACME, 1000.0) -> {value.get('ok', value)}: the cartel's answer, signed by all four "
                "members")
            say("  waiting for the validators drawn for the first checkpoint to re-execute it from Swarm...")
            while not any(d.status != OPEN for d in disputes.disputes_of(eth.cluster_id)):
                if time.monotonic() - lied > timeout:
                    say(f"  no ruling within {timeout:.0f} s; see {devnet.home / 'logs'}")
                    return False
                time.sleep(1.0)
            ruled = next(d for d in disputes.disputes_of(eth.cluster_id) if d.status != OPEN)
            say(f"  dispute {ruled.dispute_id} by validator node {ruled.disputer}, about height {ruled.height}: ruled "
                f"{ruled.status_name.upper()} {time.monotonic() - lied:.1f} s after the lie")
            for event in disputes.story(ruled.dispute_id):
                if event.name in ("JurorDrawn", "VoteRevealed", "RoundTallied"):
                    say(f"    {event.describe()}")
            registry = Registry.connect(eth.url, eth.registry)
            for node_id, taken in registry.slashed_wei(eth.node_ids).items():
                say(f"  node {node_id}: {taken / 10**18:.0f} ETH slashed, {registry.node(node_id).status}")
            say(f"  the disputer may claim {disputes.claimable(ruled.disputer_address) / 10**18:.0f} ETH (its bond "
                f"and the 10% bounty); {disputes.total_burned() / 10**18:.0f} ETH burnt")
            try:
                session.verified(counter)
                say("  THE CLIENT BELIEVED THE CARTEL")
                return False
            except VerificationFailed as refused:
                say(f"  the client refuses the result: {refused.check.detail}")
        return True
    finally:
        devnet.stop()


def main() -> int:
    if not APP.exists() or not CARTEL_APP.exists():
        say(f"{APP} or {CARTEL_APP} missing: run `make setup`")
        return 1
    Devnet.remove(HOME)
    say("Starting a local cluster of 4 nodes (CometBFT + the Python state machine each)...")
    devnet = Devnet.create(HOME, 4, APP, base_port=26600, progress=lambda m: say(f"  {m}"), validators=VALIDATORS)
    try:
        devnet.start(progress=lambda m: say(f"  {m}"))
        for node in devnet.nodes:
            say(f"  {node.name}: RPC {node.rpc}")
        say("\n-- the members in the Ethereum Registry, with their deposits --")
        from rtc.ethereum.registry import Registry

        registry = Registry.connect(devnet.ethereum.url, devnet.ethereum.registry)
        for name, member in zip((n.name for n in devnet.nodes), registry.members(devnet.ethereum.cluster_id)):
            say(f"  {name}: node {member.node_id}, deposit {member.deposit_wei / 10**18:.0f} ETH, {member.status}, "
                f"operator {member.operator[:10]}…")
        history = node_history(devnet)  # the store opens once per process: one reader for everything here
        try:
            asyncio.run(drive(devnet, history))
            show_validation(devnet)
            show_a_node_joining(devnet)
            show_history(history)
        finally:
            history.swarm.close()
        say("\n-- every node agrees on the state --")
        target = max(s.height or 0 for s in devnet.status()) + 1
        devnet.wait_for_height(target)
        hashes = set()
        for node in devnet.nodes:
            with RPC(node.rpc) as rpc:
                header = rpc.block(target)["header"]
            hashes.add(header["app_hash"])
            say(f"  {node.name}: height {target} app_hash {header['app_hash'][:24]}…")
        say("  all nodes agree" if len(hashes) == 1 else "  NODES DISAGREE")
        if len(hashes) != 1:
            return 1
    finally:
        say("\nStopping the cluster.")
        devnet.stop()
    return 0 if show_a_cartel_caught() else 1


if __name__ == "__main__":
    sys.exit(main())
