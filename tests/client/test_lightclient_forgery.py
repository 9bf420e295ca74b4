"""Forged and mismatched inputs that verify_commit must refuse, each for a precise reason.

Every test runs on two samples of a block signed by 4 validators of power 10: one that
CometBFT's Go code produced (vectors/), and one served by a real devnet (marked cluster).
With 40 in total, more than 40 * 2 // 3 = 26 is needed: 3 precommits suffice, 2 do not.
"""

from __future__ import annotations

import base64
import os
from hashlib import sha256
from typing import Any

import pytest
from nacl.signing import SigningKey

from rtc.cometbft.lightclient import (
    VerificationError,
    header_hash,
    parse_signed_header,
    validator_set_hash,
    verify_commit,
)
from rtc.devnet import Devnet

from .conftest import Sample, fetch_sample, go_sample


@pytest.fixture(params=["go", pytest.param("devnet", marks=pytest.mark.cluster)])
def sample(request: pytest.FixtureRequest) -> Sample:
    if request.param == "go":
        return go_sample(request.getfixturevalue("vectors"), "four").copy()
    return request.getfixturevalue("devnet_sample").copy()


def flip(sample: Sample, idx: int) -> None:
    sig = bytearray(base64.b64decode(sample.signatures[idx]["signature"]))
    sig[17] ^= 0x40
    sample.signatures[idx]["signature"] = base64.b64encode(bytes(sig)).decode()


def make_absent(sample: Sample, idx: int) -> None:
    sample.signatures[idx] = {"block_id_flag": 1, "validator_address": "", "timestamp": "0001-01-01T00:00:00Z", "signature": None}


def header_hash_hex(sample: Sample) -> str:
    return header_hash(sample.header).hex().upper()


def refuse(sample: Sample, kind: str, match: str | None = None, chain_id: str | None = None, **kwargs: Any) -> VerificationError:
    with pytest.raises(VerificationError, match=match) as info:
        verify_commit(sample.chain_id if chain_id is None else chain_id, sample.commit, sample.validators, **kwargs)
    assert info.value.kind == kind, str(info.value)
    return info.value


def test_untouched_sample_verifies(sample: Sample) -> None:
    result = verify_commit(sample.chain_id, sample.commit, sample.validators)
    assert (result.signed_power, result.total_power) == (40, 40)
    assert [s.index for s in result.signers] == [0, 1, 2, 3]


# -- signatures ---------------------------------------------------------------------------------


def test_one_forged_signature_is_an_error_when_all_are_checked(sample: Sample) -> None:
    """Strict mode (default): the three valid precommits would carry 30 > 26, but a provider
    that serves a forged signature is not believed at all."""
    for idx in range(4):
        forged = sample.copy()
        flip(forged, idx)
        refuse(forged, "bad_signature", f"wrong signature #{idx} ")


def test_one_forged_signature_in_light_mode_depends_on_whether_it_is_reached(sample: Sample) -> None:
    """types.VerifyCommitLight semantics: slots are checked in order until more than 2/3 is
    reached. A forged slot 0 is reached (error); a forged slot 3 never is (the commit passes on
    slots 0-2, and the forged one is not among the reported signers)."""
    first = sample.copy()
    flip(first, 0)
    refuse(first, "bad_signature", "wrong signature #0 ", all_signatures=False)
    last = sample.copy()
    flip(last, 3)
    result = verify_commit(last.chain_id, last.commit, last.validators, all_signatures=False)
    assert [s.index for s in result.signers] == [0, 1, 2]
    assert result.signed_power == 30


def test_two_forged_signatures_fail_in_both_modes(sample: Sample) -> None:
    forged = sample.copy()
    flip(forged, 2)
    flip(forged, 3)
    refuse(forged, "bad_signature", "wrong signature #2 ")
    refuse(forged, "bad_signature", "wrong signature #2 ", all_signatures=False)


def test_power_rule_three_of_four_pass_two_of_four_fail(sample: Sample) -> None:
    """Without forgery: missing votes only lower the power. 30 of 40 passes, 20 of 40 does not."""
    three = sample.copy()
    make_absent(three, 1)
    result = verify_commit(three.chain_id, three.commit, three.validators)
    assert (result.signed_power, [s.index for s in result.signers]) == (30, [0, 2, 3])
    two = sample.copy()
    make_absent(two, 1)
    make_absent(two, 3)
    refuse(two, "insufficient_power", "carry 20 of 40 voting power; more than 26 is needed")
    refuse(two, "insufficient_power", all_signatures=False)


def test_precommit_for_the_block_relabelled_as_nil(sample: Sample) -> None:
    """Its signature covers the block ID, so as a nil vote it is invalid: an error when all
    signatures are checked; light mode ignores nil votes and passes on the other three."""
    relabelled = sample.copy()
    relabelled.signatures[0]["block_id_flag"] = 3
    refuse(relabelled, "bad_signature", r"wrong signature #0 \(precommit for nil")
    result = verify_commit(relabelled.chain_id, relabelled.commit, relabelled.validators, all_signatures=False)
    assert [s.index for s in result.signers] == [1, 2, 3]


def test_signature_of_another_slot_is_refused(sample: Sample) -> None:
    swapped = sample.copy()
    swapped.signatures[1]["signature"] = swapped.signatures[0]["signature"]
    refuse(swapped, "bad_signature", "wrong signature #1 ")


# -- header -------------------------------------------------------------------------------------


def test_changed_app_hash_changes_the_block_hash(sample: Sample) -> None:
    forged = sample.copy()
    forged.header["app_hash"] = "00" * 32
    refuse(forged, "header_hash", "commit signs block .* but the header hashes to")


def test_changed_header_with_matching_block_id_has_no_valid_signature(sample: Sample) -> None:
    """Re-pointing the commit at the forged header does not help: the votes signed the real block ID."""
    forged = sample.copy()
    forged.header["app_hash"] = "00" * 32
    forged.commit["signed_header"]["commit"]["block_id"]["hash"] = header_hash_hex(forged)
    refuse(forged, "bad_signature", "wrong signature #0 ")


def test_every_header_field_is_covered_by_the_hash(sample: Sample) -> None:
    for field, value in [
        ("chain_id", sample.chain_id + "x"), ("height", str(sample.height + 1)), ("time", "2030-01-01T00:00:00Z"),
        ("last_commit_hash", "11" * 32), ("data_hash", "22" * 32), ("next_validators_hash", "33" * 32),
        ("consensus_hash", "44" * 32), ("app_hash", ""), ("last_results_hash", "55" * 32),
        ("evidence_hash", "66" * 32), ("proposer_address", "77" * 20),
    ]:
        forged = sample.copy()
        forged.header[field] = value
        with pytest.raises(VerificationError) as info:
            verify_commit(forged.chain_id, forged.commit, forged.validators)
        assert info.value.kind in ("header_hash", "chain_id", "height"), (field, str(info.value))
    forged = sample.copy()
    forged.header["version"]["app"] = "2"
    refuse(forged, "header_hash")
    forged = sample.copy()
    forged.header["last_block_id"]["parts"]["total"] += 1
    refuse(forged, "header_hash")


# -- chain and height ---------------------------------------------------------------------------


def test_wrong_chain_id(sample: Sample) -> None:
    refuse(sample, "chain_id", "header is for chain .*, not 'another-chain'", chain_id="another-chain")


def test_chain_id_is_signed(sample: Sample) -> None:
    """A header rewritten for another chain, commit re-pointed at it: the votes name the old chain."""
    forged = sample.copy()
    forged.header["chain_id"] = "another-chain"
    forged.commit["signed_header"]["commit"]["block_id"]["hash"] = header_hash_hex(forged)
    refuse(forged, "bad_signature", chain_id="another-chain")


def test_commit_for_another_height(sample: Sample) -> None:
    other = sample.copy()
    other.commit["signed_header"]["commit"]["height"] = str(sample.height + 1)
    refuse(other, "height", f"header is for height {sample.height} but the commit is for height {sample.height + 1}")
    refuse(sample, "height", f"not the requested {sample.height + 1}", height=sample.height + 1)
    assert verify_commit(sample.chain_id, sample.commit, sample.validators, height=sample.height).height == sample.height


@pytest.mark.cluster
def test_real_commit_of_the_next_height_does_not_fit(devnet: Devnet, devnet_sample: Sample) -> None:
    nxt = fetch_sample(devnet, devnet_sample.height + 1)
    mixed = devnet_sample.copy()
    mixed.commit["signed_header"]["commit"] = nxt.commit["signed_header"]["commit"]
    refuse(mixed, "height", "but the commit is for height")


# -- validator set ------------------------------------------------------------------------------


def _fresh_validator() -> dict[str, object]:
    key = SigningKey(os.urandom(32)).verify_key.encode()
    return {"address": sha256(key).digest()[:20].hex().upper(),
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(key).decode()},
            "voting_power": "10", "proposer_priority": "0"}


def test_validator_set_with_a_different_key(sample: Sample) -> None:
    forged = sample.copy()
    forged.validators["validators"][1] = _fresh_validator()
    refuse(forged, "validators_hash", "validator set hashes to .* has validators_hash")


def test_key_swapped_under_the_same_address(sample: Sample) -> None:
    forged = sample.copy()
    forged.validators["validators"][1]["pub_key"] = _fresh_validator()["pub_key"]
    refuse(forged, "validator_set", "validator #1 address .* is not derived from its key")


def test_validator_power_changed(sample: Sample) -> None:
    forged = sample.copy()
    forged.validators["validators"][0]["voting_power"] = "100"
    refuse(forged, "validators_hash")


def test_trusted_validators_hash(sample: Sample) -> None:
    trusted = validator_set_hash(sample.validators)
    assert verify_commit(sample.chain_id, sample.commit, sample.validators, trusted_validators_hash=trusted)
    assert verify_commit(sample.chain_id, sample.commit, sample.validators, trusted_validators_hash=trusted.hex().upper())
    refuse(sample, "validators_hash", "not the trusted", trusted_validators_hash=b"\x01" * 32)


def test_validator_listed_twice(sample: Sample) -> None:
    forged = sample.copy()
    forged.validators["validators"][1] = forged.validators["validators"][0]
    refuse(forged, "validator_set", "is listed twice")


def test_one_page_of_validators_is_refused(sample: Sample) -> None:
    page = sample.copy()
    page.validators["validators"] = page.validators["validators"][:2]
    page.validators["count"] = "2"
    refuse(page, "validator_set", "one page")


# -- commit slots -------------------------------------------------------------------------------


def test_duplicated_signature(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures[1] = dict(forged.signatures[0])
    refuse(forged, "duplicate_signature", r"signs twice \(#0 and #1\)")


def test_extra_signature_slot(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures.append(dict(forged.signatures[0]))
    refuse(forged, "signature_count", "5 signature slots for 4 validators")


def test_unknown_validator_address(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures[2]["validator_address"] = "AB" * 20
    refuse(forged, "unknown_validator", "signature #2 is from ABAB")


def test_slots_out_of_order(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures[0], forged.signatures[1] = forged.signatures[1], forged.signatures[0]
    refuse(forged, "address_mismatch", "signature #0 is from .* but validator #0 is")


def test_absent_slot_with_a_signature_is_malformed(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures[3]["block_id_flag"] = 1
    refuse(forged, "malformed", "marked absent but carries")


def test_unknown_flag_and_garbage_are_malformed(sample: Sample) -> None:
    forged = sample.copy()
    forged.signatures[0]["block_id_flag"] = 7
    refuse(forged, "malformed", "unknown block_id_flag 7")
    forged = sample.copy()
    forged.signatures[0]["signature"] = "not base64!"
    refuse(forged, "malformed", "not base64")
    forged = sample.copy()
    forged.header["data_hash"] = "xyz"
    refuse(forged, "malformed", "not hex")
    forged = sample.copy()
    del forged.commit["signed_header"]["commit"]["block_id"]
    refuse(forged, "malformed", "has no 'block_id'")


def test_parse_accepts_the_whole_rpc_response(sample: Sample) -> None:
    response = {"jsonrpc": "2.0", "id": 1, "result": sample.commit}
    assert parse_signed_header(response) == parse_signed_header(sample.commit)
    vals = {"jsonrpc": "2.0", "id": 2, "result": sample.validators}
    assert verify_commit(sample.chain_id, response, vals).signed_power == 40
