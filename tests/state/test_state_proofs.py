"""Proof generation, verification, tamper rejection and encodings."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from state_reference import ZERO, bit, root_of, sha

from rtc.protocol.proof import Proof, ProofError, check_proof, verify_proof
from rtc.state.merkle import build_proof, update_tree


def make_tree(pairs: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    update = update_tree(lambda position: None, pairs)
    nodes = {position: record for position, record in update.node_writes.items() if record is not None}
    return update.root, nodes


def prove(nodes: dict[bytes, bytes], pairs: dict[bytes, bytes], key: bytes) -> Proof:
    return build_proof(nodes.get, key, pairs.get(key))


def inner(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def leaf(key: bytes, value: bytes) -> bytes:
    return sha(b"\x00" + sha(key) + sha(value))


def rejected(root: bytes, proof: Proof, reason: str = "") -> bool:
    """True if the proof is rejected by both entry points (and with `reason` if given)."""
    with pytest.raises(ProofError) as info:
        check_proof(root, proof)
    assert reason in str(info.value), str(info.value)
    return not verify_proof(root, proof)


@pytest.fixture(scope="module")
def tree() -> tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]:
    rng = random.Random(42)
    pairs = {b"key-%d" % i: rng.randbytes(rng.randint(0, 30)) for i in range(400)}
    root, nodes = make_tree(pairs)
    assert root == root_of(pairs)
    return root, nodes, pairs


def test_membership_proofs_verify(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    for key, value in pairs.items():
        proof = prove(nodes, pairs, key)
        assert proof.exists and proof.value == value
        assert proof.other_path is None
        check_proof(root, proof)
        assert verify_proof(root, proof)


def test_absence_proofs_verify_both_kinds(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    ended_at_leaf = ended_at_empty = 0
    for index in range(600):
        key = b"absent-%d" % index
        proof = prove(nodes, pairs, key)
        assert not proof.exists
        check_proof(root, proof)
        if proof.other_path is None:
            ended_at_empty += 1
        else:
            ended_at_leaf += 1
            assert proof.other_path != sha(key)
    assert ended_at_leaf > 50 and ended_at_empty > 50


def test_proofs_of_tiny_trees() -> None:
    _, empty_nodes = make_tree({})
    proof = prove(empty_nodes, {}, b"x")
    assert proof == Proof(b"x", None, ())
    check_proof(ZERO, proof)

    pairs = {b"only": b"one"}
    root, nodes = make_tree(pairs)
    member = prove(nodes, pairs, b"only")
    assert member.siblings == () and root == leaf(b"only", b"one")
    check_proof(root, member)
    absent = prove(nodes, pairs, b"other")
    assert absent.siblings == () and absent.other_path == sha(b"only")
    check_proof(root, absent)


def test_wrong_value_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    key = next(k for k, v in pairs.items() if v)
    proof = prove(nodes, pairs, key)
    assert rejected(root, dataclasses.replace(proof, value=proof.value + b"!"), "does not match")  # type: ignore[operator]
    assert rejected(root, dataclasses.replace(proof, value=b""), "does not match")


def test_wrong_key_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    proof = prove(nodes, pairs, b"key-7")
    assert rejected(root, dataclasses.replace(proof, key=b"key-8"))
    absent = prove(nodes, pairs, b"nope")
    assert rejected(root, dataclasses.replace(absent, key=b"key-9"))


def test_every_tampered_sibling_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    for key in (b"key-1", b"absent-3", b"absent-4"):
        proof = prove(nodes, pairs, key)
        assert len(proof.siblings) >= 5
        for index, sibling in enumerate(proof.siblings):
            flipped = bytes([sibling[0] ^ 1]) + sibling[1:]
            siblings = list(proof.siblings)
            siblings[index] = flipped
            assert rejected(root, dataclasses.replace(proof, siblings=tuple(siblings)))
            if index < len(siblings) - 1 and sibling != ZERO:
                siblings[index] = ZERO
                assert rejected(root, dataclasses.replace(proof, siblings=tuple(siblings)), "does not match")


def test_wrong_root_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    proof = prove(nodes, pairs, b"key-1")
    assert rejected(bytes([root[0] ^ 0x80]) + root[1:], proof, "does not match")
    assert rejected(root[:31], proof, "32 bytes")


def test_extra_or_missing_siblings_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    for key in (b"key-2", b"absent-1", b"absent-2"):
        proof = prove(nodes, pairs, key)
        siblings = proof.siblings
        some_hash = sha(b"filler")
        variants = [
            siblings[1:],
            siblings[:-1],
            siblings + (some_hash,),
            (some_hash,) + siblings,
            siblings + (ZERO,),
            (ZERO,) + siblings,
        ]
        for variant in variants:
            assert rejected(root, dataclasses.replace(proof, siblings=variant))


def test_non_membership_claim_for_present_key_rejected(
    tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]],
) -> None:
    root, nodes, pairs = tree
    member = prove(nodes, pairs, b"key-3")
    # Ending at the key's own leaf but calling it "another leaf" would hash
    # to the right root: only the explicit path check stops it.
    own_leaf = dataclasses.replace(member, value=None, other_path=sha(b"key-3"), other_value_hash=sha(pairs[b"key-3"]))
    assert rejected(root, own_leaf, "own path")
    # Claiming the walk ended at an empty subtree instead.
    assert rejected(root, dataclasses.replace(member, value=None), "does not match")


def test_leaf_with_empty_last_sibling_rejected() -> None:
    """A non-compact shape (leaf beside an empty sibling) must not verify even if hashes agree."""
    key, value = b"lonely", b"v"
    node = leaf(key, value)
    fake_root = inner(ZERO, node) if bit(sha(key), 0) else inner(node, ZERO)
    proof = Proof(key, value, (ZERO,))
    assert rejected(fake_root, proof, "compact")
    # The same leaf deeper, below one legitimate inner level, too.
    other = sha(b"some subtree")
    level1 = inner(ZERO, node) if bit(sha(key), 1) else inner(node, ZERO)
    fake_root2 = inner(other, level1) if bit(sha(key), 0) else inner(level1, other)
    assert rejected(fake_root2, Proof(key, value, (other, ZERO)), "compact")
    # Same for an absence proof ending at another leaf.
    other_path = bytes([sha(key)[0] ^ 0x01]) + sha(key)[1:]  # shares the first 7 bits
    other_leaf = sha(b"\x00" + other_path + sha(b"w"))
    fake_root3 = inner(ZERO, other_leaf) if bit(sha(key), 0) else inner(other_leaf, ZERO)
    assert rejected(fake_root3, Proof(key, None, (ZERO,), other_path, sha(b"w")), "compact")


def test_empty_terminal_with_empty_last_sibling_rejected() -> None:
    key = b"k"
    fake_root = inner(ZERO, ZERO)
    assert rejected(fake_root, Proof(key, None, (ZERO,)), "walk must end higher")


def test_other_leaf_off_the_key_path_rejected() -> None:
    key = b"k"
    path = sha(key)
    # Another leaf whose first bit differs from the key's: it could not sit on the key's walk.
    other_path = bytes([path[0] ^ 0x80]) + path[1:]
    sibling = sha(b"anything")
    other_leaf = sha(b"\x00" + other_path + sha(b"w"))
    fake_root = inner(sibling, other_leaf) if bit(path, 0) else inner(other_leaf, sibling)
    assert rejected(fake_root, Proof(key, None, (sibling,), other_path, sha(b"w")), "does not lie on")


def test_structurally_malformed_proofs_rejected(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    root, nodes, pairs = tree
    member = prove(nodes, pairs, b"key-5")
    absent = next(p for i in range(100) if (p := prove(nodes, pairs, b"absent-%d" % i)).other_path is not None)
    assert rejected(root, dataclasses.replace(member, other_path=sha(b"x"), other_value_hash=sha(b"y")), "membership")
    assert rejected(root, dataclasses.replace(absent, other_value_hash=None), "together")
    assert rejected(root, dataclasses.replace(absent, other_path=absent.other_path[:31]), "32 bytes")  # type: ignore[index]
    assert rejected(root, dataclasses.replace(member, siblings=member.siblings[:-1] + (b"short",)), "32 bytes")
    assert rejected(root, Proof(b"k", None, (sha(b"x"),) * 256), "at most 255")
    assert rejected(root, Proof(b"k", b"v", (sha(b"x"),) * 257), "at most 256")


@pytest.mark.parametrize("key", [b"key-11", b"absent-0", b"absent-1", b"absent-2", b"absent-5"])
def test_encodings_round_trip(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]], key: bytes) -> None:
    root, nodes, pairs = tree
    proof = prove(nodes, pairs, key)
    encoded = proof.to_bytes()
    assert Proof.from_bytes(encoded) == proof
    assert Proof.from_json(proof.to_json()) == proof
    assert Proof.from_json(json.loads(proof.to_json())) == proof
    check_proof(root, Proof.from_bytes(encoded))
    value_part = 4 + len(proof.value) if proof.value is not None else (64 if proof.other_path else 0)
    present = sum(1 for s in proof.siblings if s != ZERO)
    assert len(encoded) == 2 + 4 + len(key) + value_part + 2 + (len(proof.siblings) + 7) // 8 + 32 * present


def test_json_shape() -> None:
    proof = Proof(b"\x01\xff", None, (ZERO, sha(b"a")), sha(b"p"), sha(b"h"))
    data = json.loads(proof.to_json())
    assert data == {
        "key": "01ff",
        "value": None,
        "siblings": ["00" * 32, sha(b"a").hex()],
        "other_path": sha(b"p").hex(),
        "other_value_hash": sha(b"h").hex(),
    }


def test_binary_encoding_is_strict(tree: tuple[bytes, dict[bytes, bytes], dict[bytes, bytes]]) -> None:
    _, nodes, pairs = tree
    encoded = prove(nodes, pairs, b"key-12").to_bytes()
    for cut in range(len(encoded)):
        with pytest.raises(ProofError):
            Proof.from_bytes(encoded[:cut])
    with pytest.raises(ProofError, match="trailing"):
        Proof.from_bytes(encoded + b"\x00")
    with pytest.raises(ProofError, match="version"):
        Proof.from_bytes(b"\x02" + encoded[1:])
    with pytest.raises(ProofError, match="kind"):
        Proof.from_bytes(encoded[:1] + b"\x03" + encoded[2:])
    # 3 siblings, bitmap with a padding bit set.
    with pytest.raises(ProofError, match="padding"):
        Proof.from_bytes(b"\x01\x00" + b"\x00\x00\x00\x00" + b"\x00\x03" + b"\x01")
    # An all-zero sibling must be written as a cleared bitmap bit, not explicitly.
    with pytest.raises(ProofError, match="empty sibling"):
        Proof.from_bytes(b"\x01\x00" + b"\x00\x00\x00\x00" + b"\x00\x01" + b"\x80" + ZERO)
    with pytest.raises(ProofError, match="at most"):
        Proof.from_bytes(b"\x01\x00" + b"\x00\x00\x00\x00" + (257).to_bytes(2, "big") + bytes(33))


def test_json_decoding_is_strict() -> None:
    good = json.loads(Proof(b"k", b"v", (sha(b"a"),)).to_json())
    for broken in (
        "not json",
        "[]",
        json.dumps({**good, "extra": 1}),
        json.dumps({**good, "key": "zz"}),
        json.dumps({**good, "siblings": "00"}),
        json.dumps({**good, "value": 5}),
        json.dumps({k: v for k, v in good.items() if k != "key"}),
    ):
        with pytest.raises(ProofError):
            Proof.from_json(broken)
