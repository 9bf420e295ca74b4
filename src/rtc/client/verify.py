"""A result a client can believe without trusting the node that served it.

The node answers with the result record and a Merkle proof against the state at height
H. That state's root is the `app_hash` in header H+1, and header H+1 is believed only if
it was signed by validators the client trusts: more than 2/3 of the voting power of a
fixed validator set (`TrustedValidators`, e.g. genesis), or more than 2/3 of the cluster's
staked members in the Registry contract (`ContractCheck`), which follows the validator
set as nodes join and leave. Every step is checked here; a failure raises
`VerificationError`, never a silent pass.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import websockets

from rtc.sessions.ordering import result_key
from rtc.state import Proof, ProofError, check_proof

from .lightclient import VerificationError, parse_signed_header, validator_set_hash, verify_commit
from .rpc import FINAL, CallResult, NodeClient, RPCError

if TYPE_CHECKING:  # web3 is imported only by clients that check the contract
    from .membership import ContractCheck, MembershipReport


@dataclass(frozen=True)
class TrustedValidators:
    """The validator set a client trusts, by hash (from genesis, or followed across changes)."""

    chain_id: str
    validators_hash: bytes

    @classmethod
    async def from_genesis(cls, node: NodeClient) -> "TrustedValidators":
        """Trust on first use: the genesis as a node serves it. Prefer `from_genesis_file` or a
        pinned hash; ask a different node than the one whose answers are being checked."""
        return cls.from_genesis_document((await node.rpc("genesis"))["genesis"])

    @classmethod
    def from_genesis_file(cls, path: Path) -> "TrustedValidators":
        """The validator set of a genesis file the client holds itself (no node involved)."""
        return cls.from_genesis_document(json.loads(path.read_text()))

    @classmethod
    def from_genesis_document(cls, genesis: dict[str, Any]) -> "TrustedValidators":
        validators = [
            {"address": v["address"], "pub_key": v["pub_key"], "voting_power": v["power"], "proposer_priority": "0"}
            for v in genesis["validators"]
        ]
        # The set hash is independent of priorities; order by power then address as CometBFT does.
        validators.sort(key=lambda v: (-int(v["voting_power"]), bytes.fromhex(v["address"])))
        return cls(genesis["chain_id"], validator_set_hash({"validators": validators}))


@dataclass
class Receipt:
    """A verified result and the facts that make it so; `checks` lists each one that passed."""

    result: CallResult
    state_height: int
    header_height: int
    app_hash: str
    signers: list[dict[str, Any]]
    signed_power: int
    total_power: int
    checks: list[str] = field(default_factory=list)
    verify_ms: float = 0.0
    membership: MembershipReport | None = None  # set when the Registry check ran
    history: Any = None  # rtc.history.reader.HistoryStatus, when Swarm was asked

    def to_json(self) -> dict[str, Any]:
        data = {
            "result": self.result.to_json(), "state_height": self.state_height, "header_height": self.header_height,
            "app_hash": self.app_hash, "signers": self.signers, "signed_power": self.signed_power,
            "total_power": self.total_power, "checks": self.checks, "verify_ms": round(self.verify_ms, 2),
        }
        if self.history is not None:
            data["history"] = self.history.to_json()
        if self.membership is not None:  # absent, not empty, when the contract was not asked
            data["members"] = [s.to_json() for s in self.membership.counted]
            data["contract"] = self.membership.to_json()
        return data

    def member_lines(self) -> list[str]:
        """The signers as the contract sees them (empty when the contract was not asked)."""
        if self.membership is None:
            return []
        m = self.membership
        return [f"signers in Registry {m.registry}, cluster {m.cluster_id}, at Ethereum block {m.ethereum_block}:",
                *(f"  {row}" for row in m.lines())]


async def verified_result(node: NodeClient, session: bytes, counter: int, trusted: TrustedValidators | None,
                          timeout: float = 30.0, contract: ContractCheck | None = None,
                          chain_id: str | None = None, history: Any = None) -> Receipt:
    """Fetch the result of (session, counter) with its proof and check it against a signed header.

    Trust comes from `trusted` (the header's validator set must be that one), from
    `contract` (the signers must be staked members of the cluster, see ContractCheck), or
    both. With `contract` alone the validator set is the one the node serves, checked
    only against the header's own validators_hash: that makes it consistent, and the
    contract check is what makes it trusted. The chain id is then `chain_id` or, if not
    given, the one the node reports; pass it when you know it, since the node's claim is
    checked only in that the staked members must have signed for that chain.

    `history` (an `rtc.history.reader.HistoryReader`): also report whether the record of
    the block that wrote the result is in Swarm, linked up to the verified block.
    """
    if trusted is None and contract is None:
        raise ValueError("nothing to verify against: pass `trusted` (a validator set) or `contract` (a ContractCheck)")
    if trusted is not None and chain_id is not None and chain_id != trusted.chain_id:
        raise ValueError(f"chain id {chain_id!r} contradicts the trusted validator set's {trusted.chain_id!r}")
    if trusted is not None:
        chain, chain_note = trusted.chain_id, ""
    elif chain_id is not None:
        chain, chain_note = chain_id, ""
    else:
        chain, chain_note = await node.chain_id(), " (the chain id the node reports)"
    response = await node.abci_query(f"/result/{session.hex()}/{counter}", prove=True)
    if int(response.get("code", 0)) != 0:
        raise RPCError(response.get("log", "query failed"))
    state_height = int(response["height"])
    value = base64.b64decode(response.get("value") or "")
    ops = (response.get("proofOps") or response.get("proof_ops") or {}).get("ops") or []
    if len(ops) != 1 or ops[0].get("type") != "rtc:smt":
        raise VerificationError("malformed", "the node's answer carries no rtc:smt proof")
    await _wait_for_height(node, state_height + 1, timeout)
    started = time.perf_counter()
    checks = []
    try:
        proof = Proof.from_bytes(base64.b64decode(ops[0]["data"]))
    except (ProofError, ValueError) as exc:
        raise VerificationError("malformed", f"the proof cannot be decoded: {exc}") from None
    expected_key = result_key(session, counter)
    if proof.key != expected_key:
        raise VerificationError("malformed", "the proof is for another key than (session, counter)")
    if (proof.value or b"") != value:
        raise VerificationError("malformed", "the proof is for another value than the one returned")
    if proof.value is None:
        raise VerificationError("malformed", f"no result is recorded for counter {counter} (the proof shows its absence)")
    checks.append("the proof names this session and counter and the returned record")
    commit = await node.rpc("commit", height=str(state_height + 1))
    validators = await node.rpc("validators", height=str(state_height + 1), per_page="100")
    if trusted is not None:
        trusted_hash = trusted.validators_hash
    else:  # the header's own validators_hash: the served set is consistent with it, not yet trusted
        trusted_hash = parse_signed_header(commit["signed_header"]).header.validators_hash
    verified = verify_commit(chain, commit["signed_header"], validators, trusted_hash, height=state_height + 1)
    checks.append(f"header {state_height + 1} is for chain {chain}{chain_note} and hashes to the signed block id")
    if trusted is not None:
        checks.append("the header's validator set is the trusted one")
    else:
        checks.append("the validator set the node served hashes to the header's validators_hash "
                      "(consistent; trusted through the Registry check below)")
    checks.append(f"{len(verified.signers)} validators signed with {verified.signed_power} of {verified.total_power} "
                  "voting power (more than 2/3), every signature verified over CometBFT's canonical vote bytes")
    membership = None
    if contract is not None:
        membership = await contract.check_commit(verified, validators)
        checks.append(membership.check_line())
    try:
        check_proof(verified.app_hash, proof)
    except ProofError as exc:
        raise VerificationError("proof", f"the Merkle proof does not lead to the signed app_hash: {exc}") from None
    checks.append(f"the Merkle proof leads to app_hash {verified.app_hash.hex()[:16]}… of header {state_height + 1}")
    record = json.loads(value)
    if record.get("status") not in FINAL:
        raise VerificationError("not_final", f"call {counter} is {record.get('status')}: no final result to verify yet")
    verify_ms = (time.perf_counter() - started) * 1000  # the client's own checks, not Swarm's round trips
    status = None
    if history is not None:
        from rtc.history.reader import block_in_history

        written = int(record.get("height", state_height))
        status = await asyncio.to_thread(block_in_history, history, written, state_height,
                                         verified.header.last_block_id.hash)
        if status.in_swarm:
            checks.append(f"the record of block {written} is in Swarm ({status.record.hex()[:12]}…) and links, "
                          f"record by record, to block {state_height}, which header {state_height + 1} names")
    return Receipt(
        history=status,
        result=CallResult.from_record(session.hex(), counter, record),
        state_height=state_height,
        header_height=state_height + 1,
        app_hash=verified.app_hash.hex(),
        signers=[{"address": s.address.hex(), "power": s.voting_power} for s in verified.signers],
        signed_power=verified.signed_power,
        total_power=verified.total_power,
        checks=checks,
        verify_ms=verify_ms,
        membership=membership,
    )


async def _wait_for_height(node: NodeClient, height: int, timeout: float) -> None:
    """Header H+1 follows the state of H within a block; wait for it on the websocket."""
    status = await node.status()
    if int(status["sync_info"]["latest_block_height"]) >= height:
        return
    async with websockets.connect(node.ws_url, open_timeout=timeout) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": "nb", "method": "subscribe",
                                  "params": {"query": "tm.event='NewBlockHeader'"}}))
        deadline = asyncio.get_running_loop().time() + timeout
        status = await node.status()
        while int(status["sync_info"]["latest_block_height"]) < height:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise RPCError(f"block {height} did not appear within {timeout:.0f}s")
            try:
                await asyncio.wait_for(ws.recv(), remaining)
            except asyncio.TimeoutError:
                continue
            status = await node.status()
