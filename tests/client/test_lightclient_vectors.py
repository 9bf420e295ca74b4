"""The light client against CometBFT's own numbers: published Go test vectors, and values that
CometBFT v0.39.4's Go code computed for us (vectors/gen_vectors.go), including its verdicts
on forged commits. No cluster needed."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rtc.abci._pb.tendermint.types import types_pb2, validator_pb2
from rtc.cometbft.lightclient import (
    BlockID,
    BlockIDFlag,
    CommitSig,
    Header,
    PartSetHeader,
    Timestamp,
    VerificationError,
    header_hash,
    merkle_root,
    parse_signed_header,
    parse_validators,
    validator_set_hash,
    verify_commit,
    vote_sign_bytes,
)

from .conftest import go_sample

SCENARIOS = ["mixed", "four", "genesis"]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- literal values copied from the CometBFT v0.39.4 source tree ---------------------------

# crypto/merkle/tree_test.go, TestHashFromByteSlices, and crypto/merkle/rfc6962_test.go.
MERKLE_VECTORS = [
    ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ([bytes([1, 2, 3])], "054edec1d0211f624fed0cbca9d4f9400b0e491c43742af2c5b0abebf0c990d8"),
    ([b""], "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    ([bytes([1, 2, 3]), bytes([4, 5, 6])], "82e6cfce00453804379b53962939eaa7906b39904be0813fcadd31b100773c4b"),
    ([bytes([1, 2]), bytes([3, 4]), bytes([5, 6]), bytes([7, 8]), bytes([9, 10])],
     "f326493eceab4f2d9ffbc78c59432a0a005d6ea98392045c74df5d14a113be18"),
    ([b"L123456"], "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"),
]

# types/block_test.go, TestHeaderHash ("Generates expected hash").
HEADER_TEST_HASH = "F740121F553B5418C3EFBD343C2DBFE9E007BB67B0D020A0741374BAB65242A4"

# types/vote_test.go, TestVoteSignBytesTestVectors, cases 0-4 (Go byte literals as hex).
# The zero time.Time is 0001-01-01T00:00:00Z: seconds -62135596800, a 10-byte varint.
_ZERO_TS = "2a0b088092b8c398feffffff01"
_H1_R1 = "110100000000000000" "190100000000000000"
VOTE_VECTORS = [
    ("", 0, 0, 0, "0d" + _ZERO_TS),
    ("", 2, 1, 1, "21" "0802" + _H1_R1 + _ZERO_TS),
    ("", 1, 1, 1, "21" "0801" + _H1_R1 + _ZERO_TS),
    ("", 0, 1, 1, "1f" + _H1_R1 + _ZERO_TS),
    ("test_chain_id", 0, 1, 1, "2e" + _H1_R1 + _ZERO_TS + "320d" + b"test_chain_id".hex()),
]


def test_merkle_root_matches_cometbft_vectors() -> None:
    for items, want in MERKLE_VECTORS:
        assert merkle_root(items).hex() == want


def test_header_hash_matches_test_header_hash() -> None:
    header = Header(
        version_block=1, version_app=2, chain_id="chainId", height=3,
        time=Timestamp.parse("2019-10-13T16:14:44Z"),
        last_block_id=BlockID(bytes(32), PartSetHeader(6, bytes(32))),
        last_commit_hash=_sha(b"last_commit_hash"), data_hash=_sha(b"data_hash"),
        validators_hash=_sha(b"validators_hash"), next_validators_hash=_sha(b"next_validators_hash"),
        consensus_hash=_sha(b"consensus_hash"), app_hash=_sha(b"app_hash"),
        last_results_hash=_sha(b"last_results_hash"), evidence_hash=_sha(b"evidence_hash"),
        proposer_address=_sha(b"proposer_address")[:20],
    )
    assert header_hash(header).hex().upper() == HEADER_TEST_HASH


def test_vote_sign_bytes_match_go_test_vectors() -> None:
    for chain_id, msg_type, height, round_, want in VOTE_VECTORS:
        # Vote{} has no block ID, which a commit slot expresses as a nil vote.
        vote = CommitSig(BlockIDFlag.NIL, b"", Timestamp.parse("0001-01-01T00:00:00Z"), b"")
        got = vote_sign_bytes(chain_id, vote, height, round_, BlockID(), msg_type=msg_type)
        assert got.hex() == want


def _cometbft_source() -> Path | None:
    candidates = [os.environ.get("GOMODCACHE")]
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go:
        out = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, timeout=30, check=False)
        candidates.append(out.stdout.strip())
    candidates.append(str(Path.home() / "go" / "pkg" / "mod"))
    for root in filter(None, candidates):
        path = Path(root) / "github.com" / "cometbft" / "cometbft@v0.39.4"
        if path.is_dir():
            return path
    return None


def test_copied_vectors_are_still_in_the_cometbft_source() -> None:
    """Guards the literals above against typos: they must appear verbatim in the Go tests."""
    src = _cometbft_source()
    if src is None:
        pytest.skip("CometBFT v0.39.4 source is not in the Go module cache")
    assert src is not None
    assert HEADER_TEST_HASH in (src / "types" / "block_test.go").read_text()
    merkle_sources = (src / "crypto" / "merkle" / "tree_test.go").read_text() + (src / "crypto" / "merkle" / "rfc6962_test.go").read_text()
    for _, want in MERKLE_VECTORS:
        assert want in merkle_sources
    vote_test = re.sub(r"//[^\n]*", "", (src / "types" / "vote_test.go").read_text())
    go_bytes = [bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]+)", block))
                for block in re.findall(r"\[\]byte\{([^}]*)\}", vote_test)]
    for *_, want in VOTE_VECTORS:
        assert bytes.fromhex(want) in go_bytes


# -- values computed by CometBFT's Go code (vectors/gen_vectors.go) ----------------------------


def test_generated_vectors_include_the_published_header_hash(vectors: dict[str, Any]) -> None:
    test = vectors["header_test"]
    assert test["hash"].upper() == HEADER_TEST_HASH
    assert header_hash(test["header"]).hex() == test["hash"]  # the same header, through its RPC JSON


def test_generated_vote_sign_bytes(vectors: dict[str, Any]) -> None:
    """exampleVote of vote_test.go for the block and for nil, and one with a time before 1970."""
    for vote in vectors["votes"]:
        flag = BlockIDFlag.COMMIT if vote["block_id"]["hash"] else BlockIDFlag.NIL
        sig = {"block_id_flag": int(flag), "validator_address": "", "timestamp": vote["timestamp"], "signature": None}
        got = vote_sign_bytes(vote["chain_id"], sig, int(vote["height"]), int(vote["round"]), vote["block_id"])
        assert got.hex() == vote["sign_bytes"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_generated_scenario_hashes_and_sign_bytes(vectors: dict[str, Any], name: str) -> None:
    scenario = next(s for s in vectors["scenarios"] if s["name"] == name)
    sh = parse_signed_header(scenario["commit"])
    assert header_hash(sh.header).hex() == scenario["header_hash"] == sh.commit.block_id.hash.hex()
    assert validator_set_hash(scenario["validators"]).hex() == scenario["validators_hash"] == sh.header.validators_hash.hex()
    for idx, sig in enumerate(sh.commit.signatures):
        if sig.block_id_flag == BlockIDFlag.ABSENT:
            assert scenario["sign_bytes"][idx] == ""
            continue
        got = vote_sign_bytes(scenario["chain_id"], sig, sh.commit.height, sh.commit.round, sh.commit.block_id)
        assert got.hex() == scenario["sign_bytes"][idx], f"slot {idx}"


def _verdict(sample: Any, all_signatures: bool) -> str:
    try:
        verify_commit(sample.chain_id, sample.commit, sample.validators, all_signatures=all_signatures)
    except VerificationError as exc:
        m = re.match(r"wrong signature #(\d+)", str(exc))
        assert exc.kind == "bad_signature" and m, str(exc)
        return f"error: wrong signature (#{m.group(1)})"
    return "ok"


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_verdicts_as_cometbft_on_forged_signatures(vectors: dict[str, Any], name: str) -> None:
    """Every single and every pair of flipped signatures: our strict mode agrees with
    types.VerifyCommit, our light mode with types.VerifyCommitLight, down to which slot is blamed."""
    scenario = next(s for s in vectors["scenarios"] if s["name"] == name)
    base = go_sample(vectors, name)
    assert _verdict(base, True) == scenario["verify_commit"] == "ok"
    assert _verdict(base, False) == scenario["verify_commit_light"] == "ok"
    assert scenario["mutations"], "the generator forged nothing"
    for mutation in scenario["mutations"]:
        sample = base.copy()
        for idx in mutation["flip_signatures"]:
            sig = bytearray(base64.b64decode(sample.signatures[idx]["signature"]))
            sig[0] ^= 0x01
            sample.signatures[idx]["signature"] = base64.b64encode(bytes(sig)).decode()
        assert _verdict(sample, True) == mutation["verify_commit"], mutation
        assert _verdict(sample, False) == mutation["verify_commit_light"], mutation


def test_mixed_scenario_counts_only_precommits_for_the_block(vectors: dict[str, Any]) -> None:
    sample = go_sample(vectors, "mixed")  # powers 50 30 30 10 10 10 5; slot 3 absent, slot 6 nil
    result = verify_commit(sample.chain_id, sample.commit, sample.validators)
    assert result.total_power == 145
    assert result.signed_power == 130
    assert [s.index for s in result.signers] == [0, 1, 2, 4, 5]
    light = verify_commit(sample.chain_id, sample.commit, sample.validators, all_signatures=False)
    assert [s.index for s in light.signers] == [0, 1, 2]  # 110 > 145 * 2 // 3 = 96: stop there
    assert light.signed_power == 110


def test_validator_order_is_power_then_address(vectors: dict[str, Any]) -> None:
    vals = parse_validators(go_sample(vectors, "mixed").validators)
    keys = [(-v.voting_power, v.address) for v in vals]
    assert keys == sorted(keys)
    shuffled = [vals[1], vals[0], *vals[2:]]
    assert validator_set_hash(shuffled) != validator_set_hash(vals)  # the order is hashed


# -- the same data as generated protobuf messages ------------------------------------------------


def test_protobuf_inputs_give_the_same_results(vectors: dict[str, Any]) -> None:
    sample = go_sample(vectors, "mixed")
    sh = parse_signed_header(sample.commit)
    h, c = sh.header, sh.commit

    def block_id(bid: BlockID) -> types_pb2.BlockID:
        return types_pb2.BlockID(hash=bid.hash, part_set_header=types_pb2.PartSetHeader(
            total=bid.part_set_header.total, hash=bid.part_set_header.hash))

    proto = types_pb2.SignedHeader()
    ph = proto.header
    ph.version.block, ph.version.app = h.version_block, h.version_app
    ph.chain_id, ph.height = h.chain_id, h.height
    ph.time.seconds, ph.time.nanos = h.time.seconds, h.time.nanos
    ph.last_block_id.CopyFrom(block_id(h.last_block_id))
    for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash",
                 "app_hash", "last_results_hash", "evidence_hash", "proposer_address"):
        setattr(ph, name, getattr(h, name))
    proto.commit.height, proto.commit.round = c.height, c.round
    proto.commit.block_id.CopyFrom(block_id(c.block_id))
    for sig in c.signatures:
        ps = proto.commit.signatures.add(block_id_flag=sig.block_id_flag, validator_address=sig.validator_address,
                                         signature=sig.signature)
        ps.timestamp.seconds, ps.timestamp.nanos = sig.timestamp.seconds, sig.timestamp.nanos
    vals = validator_pb2.ValidatorSet()
    for v in parse_validators(sample.validators):
        pv = vals.validators.add(address=v.address, voting_power=v.voting_power)
        pv.pub_key.ed25519 = v.pub_key

    assert header_hash(proto.header) == header_hash(h)
    assert validator_set_hash(vals) == validator_set_hash(sample.validators)
    from_proto = verify_commit(sample.chain_id, proto, vals)
    from_json = verify_commit(sample.chain_id, sample.commit, sample.validators)
    assert from_proto == from_json


# -- RFC 3339 times, exactly -------------------------------------------------------------------


def test_timestamps_parse_to_exact_seconds_and_nanos() -> None:
    assert Timestamp.parse("1970-01-01T00:00:00Z") == Timestamp(0, 0)
    assert Timestamp.parse("2019-10-13T16:14:44Z") == Timestamp(1570983284, 0)
    assert Timestamp.parse("2026-11-22T04:14:24.571426029Z").nanos == 571426029
    assert Timestamp.parse("2017-12-25T03:00:01.234Z") == Timestamp(1514170801, 234000000)
    assert Timestamp.parse("1969-12-31T23:59:59.5Z") == Timestamp(-1, 500000000)
    assert Timestamp.parse("0001-01-01T00:00:00Z") == Timestamp(-62135596800, 0)
    assert Timestamp.parse("2019-10-13T18:14:44+02:00") == Timestamp(1570983284, 0)
    assert str(Timestamp(1514170801, 234000000)) == "2017-12-25T03:00:01.234Z"
    assert str(Timestamp(-62135596800, 0)) == "0001-01-01T00:00:00Z"
    for bad in ("2019-10-13T16:14:44", "2019-10-13T16:14:44.1234567891Z", "2019-02-30T00:00:00Z",
                "2019-10-13T16:14:60Z", "2019-10-13 16:14:44Z", ""):
        with pytest.raises(VerificationError):
            Timestamp.parse(bad)


def test_header_without_validators_hash_has_no_hash(vectors: dict[str, Any]) -> None:
    header = dict(go_sample(vectors, "four").header, validators_hash="")
    with pytest.raises(VerificationError, match="no validators_hash"):
        header_hash(header)


def test_real_nil_vote_from_a_devnet() -> None:
    """A devnet's first block, recorded: slot 1 voted nil. Its signature (over no block ID) is
    checked in strict mode and must verify; it does not count towards the 30 of 40."""
    recorded = json.loads((Path(__file__).parent / "vectors" / "devnet_nil_vote.json").read_text())
    sh = parse_signed_header(recorded["commit"])
    assert [s.block_id_flag for s in sh.commit.signatures] == [2, 3, 2, 2]
    result = verify_commit(recorded["chain_id"], recorded["commit"], recorded["validators"])
    assert (result.signed_power, [s.index for s in result.signers]) == (30, [0, 2, 3])
    forged = copy.deepcopy(recorded)
    forged["commit"]["signed_header"]["commit"]["signatures"][1]["timestamp"] = "2026-11-22T04:14:23.494855479Z"
    with pytest.raises(VerificationError, match=r"wrong signature #1 \(precommit for nil"):
        verify_commit(recorded["chain_id"], forged["commit"], forged["validators"])
    assert verify_commit(recorded["chain_id"], forged["commit"], forged["validators"], all_signatures=False).signed_power == 30
