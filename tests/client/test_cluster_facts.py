"""What the SDK reads from a node's genesis, and the resend timing it derives (no node needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rtc.client import AsyncClient, ClusterFacts, RPCError, TrustPolicy
from rtc.client.aio import resend_blocks_for, resend_seconds_for
from rtc.protocol import SigningDomain

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
GENESIS = {"chain_id": "rtc-devnet-0a1b2c3d", "app_state": {"code_hash": "00" * 32, "settings": {
    "sessions": {"gap_timeout_blocks": 80, "idle_expiry_blocks": 10_000, "max_buffered": 64},
    "ethereum": {"chain_id": 31337, "registry": REGISTRY, "cluster_id": 1, "confirmations": 2}}}}


def test_the_domain_and_the_session_rules_come_from_the_genesis() -> None:
    facts = ClusterFacts.from_genesis(GENESIS)
    assert facts.domain == SigningDomain("rtc-devnet-0a1b2c3d", 31337, bytes.fromhex(REGISTRY[2:]), 1)
    assert (facts.gap_timeout_blocks, facts.max_buffered) == (80, 64)


def test_resends_come_well_before_the_gap_deadline() -> None:
    assert resend_blocks_for(80) == 10 and resend_seconds_for(10) == 2.5
    for gap in (1, 6, 20, 80, 1000):
        blocks = resend_blocks_for(gap)
        assert blocks >= 2 and (gap < 16 or blocks * 4 + 3 < gap)  # room for several resends and their blocks


class _FakeGenesis(AsyncClient):
    async def _read(self, method: Any) -> Any:  # type: ignore[override]
        return GENESIS


@pytest.mark.parametrize("trust, why", [
    (TrustPolicy.first_use("another-chain"), "the trust policy names 'another-chain'"),
])
def test_a_node_whose_genesis_contradicts_the_trust_policy_is_refused(trust: TrustPolicy, why: str) -> None:
    async def go() -> None:
        async with _FakeGenesis("http://127.0.0.1:9", trust) as client:
            with pytest.raises(RPCError, match=why):
                await client.signing_domain()
        async with _FakeGenesis("http://127.0.0.1:9", TrustPolicy.first_use("rtc-devnet-0a1b2c3d")) as client:
            assert (await client.signing_domain()).cluster_id == 1
            assert await client.resend_after() == (10, 2.5)

    asyncio.run(go())


def test_a_client_needs_a_node() -> None:
    with pytest.raises(ValueError, match="at least one node URL"):
        AsyncClient([])
