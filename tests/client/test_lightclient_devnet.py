"""The light client against a real 4-node devnet: what its nodes serve over RPC verifies."""

from __future__ import annotations


import httpx
import pytest

from rtc.client.lightclient import (
    BlockIDFlag,
    header_hash,
    parse_header,
    parse_signed_header,
    parse_validators,
    validator_set_hash,
    verify_commit,
)
from rtc.devnet import Devnet

from .conftest import DEVNET_HEIGHTS, Sample, fetch_sample, rpc_result

pytestmark = pytest.mark.cluster


def test_every_early_block_verifies(devnet: Devnet) -> None:
    nil_votes = 0
    for height in range(1, DEVNET_HEIGHTS):
        sample = fetch_sample(devnet, height)
        sh = parse_signed_header(sample.commit)
        assert header_hash(sample.header) == sh.commit.block_id.hash, height
        assert validator_set_hash(sample.validators) == sh.header.validators_hash, height
        block = rpc_result(devnet, "block", height=height)
        assert bytes.fromhex(block["block_id"]["hash"]) == header_hash(block["block"]["header"]) == sh.commit.block_id.hash
        # The next header links back to this block (its last_block_id is the block ID the commit signs).
        following = parse_header(rpc_result(devnet, "block", height=height + 1)["block"]["header"])
        assert following.last_block_id == sh.commit.block_id

        result = verify_commit(devnet.chain_id, sample.commit, sample.validators, height=height)
        assert result.total_power == 40 and result.signed_power > 26
        assert result.block_hash == sh.commit.block_id.hash
        light = verify_commit(devnet.chain_id, sample.commit, sample.validators, all_signatures=False)
        assert light.signed_power > 26
        nil_votes += sum(s.block_id_flag == BlockIDFlag.NIL for s in sh.commit.signatures)
    print(f"verified heights 1-{DEVNET_HEIGHTS - 1}; real nil votes among them (signatures checked too): {nil_votes}")


def test_all_nodes_serve_the_same_verified_block(devnet: Devnet, devnet_sample: Sample) -> None:
    reference = verify_commit(devnet.chain_id, devnet_sample.commit, devnet_sample.validators)
    for index in range(1, len(devnet.nodes)):
        url = devnet.nodes[index].rpc
        commit = httpx.get(f"{url}/commit", params={"height": devnet_sample.height}, timeout=5).json()
        validators = httpx.get(f"{url}/validators", params={"height": devnet_sample.height}, timeout=5).json()
        result = verify_commit(devnet.chain_id, commit, validators)
        assert result.block_id == reference.block_id
        assert result.app_hash == reference.app_hash


def test_the_set_is_ordered_by_power_then_address(devnet_sample: Sample) -> None:
    vals = parse_validators(devnet_sample.validators)
    assert [v.address for v in vals] == sorted(v.address for v in vals)  # equal powers: by address
