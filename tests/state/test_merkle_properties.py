"""Properties of the Merkle tree and its proofs, over generated key/value maps (Hypothesis).

The naive reference (state_reference.py) computes every root independently; a proof must
hold for exactly the value in the map, and any change to it, its root or its bytes must
be refused with a ProofError and nothing else.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from state_reference import root_of

from rtc.protocol.proof import Proof, ProofError, check_proof, verify_proof
from rtc.state.merkle import build_proof, update_tree

keys = st.binary(min_size=0, max_size=12)
maps = st.dictionaries(keys, st.binary(max_size=20), max_size=40)


def _tree(pairs: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    update = update_tree(lambda position: None, pairs)
    return update.root, {p: r for p, r in update.node_writes.items() if r is not None}


@settings(max_examples=150, deadline=None)
@given(maps, keys)
def test_a_proof_holds_for_exactly_what_the_map_holds(pairs: dict[bytes, bytes], probe: bytes) -> None:
    root, nodes = _tree(pairs)
    assert root == root_of(pairs)
    for key in [*list(pairs)[:5], probe]:
        proof = build_proof(nodes.get, key, pairs.get(key))
        assert proof.value == pairs.get(key)
        check_proof(root, proof)
        assert Proof.from_bytes(proof.to_bytes()) == proof == Proof.from_json(proof.to_json())
        lie = Proof(key, (pairs[key] + b"!") if key in pairs else b"", proof.siblings, proof.other_path,
                    proof.other_value_hash)
        assert not verify_proof(root, lie)  # claiming another value, or presence of an absent key


@settings(max_examples=150, deadline=None)
@given(maps.filter(bool), st.data())
def test_a_proof_against_another_root_fails(pairs: dict[bytes, bytes], data: st.DataObject) -> None:
    root, nodes = _tree(pairs)
    key = data.draw(st.sampled_from(sorted(pairs)))
    proof = build_proof(nodes.get, key, pairs[key])
    changed = dict(pairs)
    changed[data.draw(keys)] = data.draw(st.binary(max_size=8))
    other = root_of(changed)
    if other != root:
        assert not verify_proof(other, proof)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(min_size=32, max_size=32))
def test_arbitrary_proof_bytes_are_refused_with_a_proof_error(data: bytes, root: bytes) -> None:
    try:
        proof = Proof.from_bytes(data)
    except ProofError:
        return
    assert not verify_proof(root, proof)


@settings(max_examples=150, deadline=None)
@given(maps.filter(bool), st.data())
def test_any_flipped_byte_of_an_encoded_proof_is_caught(pairs: dict[bytes, bytes], data: st.DataObject) -> None:
    root, nodes = _tree(pairs)
    key = data.draw(st.sampled_from(sorted(pairs)))
    encoded = bytearray(build_proof(nodes.get, key, pairs[key]).to_bytes())
    at = data.draw(st.integers(0, len(encoded) - 1))
    encoded[at] ^= 1 << data.draw(st.integers(0, 7))
    try:
        mangled = Proof.from_bytes(bytes(encoded))
    except ProofError:
        return
    # whatever still parses and verifies must state the truth about the tree
    if verify_proof(root, mangled):
        assert mangled.value == pairs.get(mangled.key)
