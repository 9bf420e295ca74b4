"""A result a client can believe without trusting the node that served it.

The node answers with the result record and a Merkle proof against the state at height
H. That state's root is the `app_hash` in header H+1, and header H+1 is believed only if
more than 2/3 of the voting power of a validator set the client trusts signed it. Every
step is checked here; a failure raises `VerificationError`, never a silent pass.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from rtc.sessions.ordering import result_key
from rtc.state import Proof, ProofError, check_proof

from .lightclient import VerificationError, validator_set_hash, verify_commit
from .rpc import FINAL, CallResult, NodeClient, RPCError


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

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result.to_json(), "state_height": self.state_height, "header_height": self.header_height,
            "app_hash": self.app_hash, "signers": self.signers, "signed_power": self.signed_power,
            "total_power": self.total_power, "checks": self.checks, "verify_ms": round(self.verify_ms, 2),
        }


async def verified_result(node: NodeClient, session: bytes, counter: int, trusted: TrustedValidators,
                          timeout: float = 30.0) -> Receipt:
    """Fetch the result of (session, counter) with its proof and check it against a signed header."""
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
    verified = verify_commit(trusted.chain_id, commit["signed_header"], validators,
                             trusted.validators_hash, height=state_height + 1)
    checks.append(f"header {state_height + 1} is for chain {trusted.chain_id} and hashes to the signed block id")
    checks.append("the header's validator set is the trusted one")
    checks.append(f"{len(verified.signers)} validators signed with {verified.signed_power} of {verified.total_power} "
                  "voting power (more than 2/3), every signature verified over CometBFT's canonical vote bytes")
    try:
        check_proof(verified.app_hash, proof)
    except ProofError as exc:
        raise VerificationError("proof", f"the Merkle proof does not lead to the signed app_hash: {exc}") from None
    checks.append(f"the Merkle proof leads to app_hash {verified.app_hash.hex()[:16]}… of header {state_height + 1}")
    record = json.loads(value)
    if record.get("status") not in FINAL:
        raise VerificationError("not_final", f"call {counter} is {record.get('status')}: no final result to verify yet")
    return Receipt(
        result=CallResult.from_record(session.hex(), counter, record),
        state_height=state_height,
        header_height=state_height + 1,
        app_hash=verified.app_hash.hex(),
        signers=[{"address": s.address.hex(), "power": s.voting_power} for s in verified.signers],
        signed_power=verified.signed_power,
        total_power=verified.total_power,
        checks=checks,
        verify_ms=(time.perf_counter() - started) * 1000,
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
