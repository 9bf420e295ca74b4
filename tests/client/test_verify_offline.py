"""`verify` judges whatever a node answers and never raises for it; the SDK never verifies without
an explicit trust policy. (Real answers, honest and lying, are checked on devnets in
test_lightclient_devnet.py and tests/cluster/test_sessions.py.)"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from typing import Any

import pytest

from rtc.client import AsyncClient, ResultEvidence, TrustPolicy, verify

SESSION = bytes(range(48))
FUZZ_RUNS = int(os.environ.get("RTC_FUZZ", "300"))  # RTC_FUZZ=5000 for a longer run
JUNK: list[Any] = [None, 0, -1, "x", "zz", [], {}, [1, 2], {"a": 1}, True, 2**70, base64.b64encode(b"\x01\x02").decode()]


def junk(rng: random.Random, depth: int = 0) -> Any:
    if depth < 2 and rng.random() < 0.4:
        keys = ["code", "value", "height", "proofOps", "ops", "type", "data", "header", "commit", "validators",
                "signatures", "version", "chain_id", "pub_key", "address", "voting_power", "log"]
        return {rng.choice(keys): junk(rng, depth + 1) for _ in range(rng.randint(1, 4))}
    return rng.choice(JUNK)


@pytest.mark.parametrize("seed", range(200))
def test_nonsense_from_a_node_gives_a_failed_receipt_not_an_exception(seed: int) -> None:
    rng = random.Random(seed)
    evidence = ResultEvidence(SESSION, 3, junk(rng) if rng.random() < 0.5 else {"code": 0, "height": "7",
                                                                                 "value": junk(rng),
                                                                                 "proofOps": junk(rng)},
                              junk(rng), junk(rng), "chain")
    for trust in (TrustPolicy.pinned("chain", b"\x00" * 32), TrustPolicy.first_use("chain")):
        receipt = verify(evidence, trust)
        assert not receipt.ok and receipt.result is None and receipt.failure is not None
        assert receipt.to_json()["ok"] is False


def test_no_verification_without_a_trust_policy() -> None:
    async def go() -> None:
        async with AsyncClient("http://127.0.0.1:9") as client:  # nothing listens: no I/O may happen first
            with pytest.raises(ValueError, match="give the client a TrustPolicy"):
                await client.receipt(SESSION, 0)

    asyncio.run(go())


def test_a_policy_needs_an_anchor() -> None:
    with pytest.raises(ValueError, match="nothing to verify against"):
        TrustPolicy(chain_id="chain")
    assert "trust on first use" in TrustPolicy.first_use().describe()


def _mutate(value: Any, rng: random.Random) -> Any:
    """A copy of `value` with one nested value replaced by nonsense."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: _mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        return value[:index] + [_mutate(value[index], rng)] + value[index + 1:]
    return rng.choice(JUNK)


@pytest.mark.parametrize("seed", range(FUZZ_RUNS))
def test_a_proven_answer_with_a_mangled_commit_fails_cleanly(seed: int, vectors: dict[str, Any]) -> None:
    """Past a good answer, CometBFT's own commits with one value mangled reach the light-client checks."""
    from rtc.protocol import ResultRecord, keys, queries
    from rtc.state.merkle import build_proof, update_tree

    record = ResultRecord.ok({"ok": 1}, 5).at(7, "AB" * 32)
    key = keys.result_key(SESSION, 3)
    update = update_tree(lambda position: None, {key: record.encoded})
    nodes = {position: r for position, r in update.node_writes.items() if r is not None}
    proof = build_proof(nodes.get, key, record.encoded)
    answer = {"code": 0, "height": "7", "value": base64.b64encode(record.encoded).decode(),
              "proofOps": {"ops": [{"type": queries.PROOF_OP_TYPE, "data": base64.b64encode(proof.to_bytes()).decode()}]}}
    rng = random.Random(seed)
    scenario = rng.choice(vectors["scenarios"])
    signed, validators = scenario["commit"]["signed_header"], scenario["validators"]
    if rng.random() < 0.5:
        signed = _mutate(signed, rng)
    else:
        validators = _mutate(validators, rng)
    evidence = ResultEvidence(SESSION, 3, answer, signed, validators, scenario["chain_id"])
    receipt = verify(evidence, TrustPolicy.pinned(scenario["chain_id"], bytes.fromhex(scenario["validators_hash"])))
    assert receipt.check("answer").passed
    assert not receipt.ok and receipt.failure.name in ("header", "validator_set", "signatures", "state_proof")
