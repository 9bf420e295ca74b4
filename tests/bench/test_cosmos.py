"""The Cosmos SDK transactions bench/cosmos.py signs for wasmd: bech32, protobuf, signatures.

(That wasmd accepts them is what `make bench` shows: a refused transaction is counted.)"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from coincurve import PrivateKey, PublicKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from cosmos import Account, _varint, bech32, execute_contract  # noqa: E402


def test_bech32_matches_bip_173() -> None:
    assert bech32("a", b"") == "a12uel5l"
    # BIP-173's P2WPKH example payload, as a bare data part (witness version and all)
    assert bech32("bc", bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")).startswith("bc1")


def test_varints_are_protobuf_s() -> None:
    assert _varint(0) == b"\x00" and _varint(1) == b"\x01" and _varint(300) == b"\xac\x02"


def test_a_signed_transaction_verifies_over_its_sign_doc() -> None:
    account = Account(PrivateKey(b"\x07" * 32), number=5, sequence=3)
    assert account.address.startswith("wasm1") and len(account.address) == 43
    message = execute_contract(account.address, "wasm1contract", b'{"update_high":{"symbol":"B0","value":1}}')
    tx = account.sign_tx([message], "chain-x", 200_000)
    assert account.sequence == 4
    # TxRaw = body (field 1) || auth_info (field 2) || signature (field 3), each length-delimited
    fields, at = [], 0
    while at < len(tx):
        assert tx[at] & 7 == 2
        length, shift, at = 0, 0, at + 1
        while True:
            byte = tx[at]
            length |= (byte & 0x7F) << shift
            at, shift = at + 1, shift + 7
            if byte < 0x80:
                break
        fields.append(tx[at:at + length])
        at += length
    body, auth_info, signature = fields
    assert len(signature) == 64
    sign_doc = (b"\x0a" + _varint(len(body)) + body + b"\x12" + _varint(len(auth_info)) + auth_info
                + b"\x1a\x07chain-x" + b"\x20\x05")
    digest = hashlib.sha256(sign_doc).digest()
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert s <= order // 2  # low-S, as the SDK demands
    der = _der(r, s)
    assert PublicKey(account.public_key).verify(der, digest, hasher=None)


def _der(r: int, s: int) -> bytes:
    def integer(value: int) -> bytes:
        raw = value.to_bytes(32, "big").lstrip(b"\x00")
        raw = b"\x00" + raw if raw[0] & 0x80 else raw
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body
