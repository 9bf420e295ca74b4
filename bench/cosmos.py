"""Cosmos SDK transactions signed directly (SIGN_MODE_DIRECT), for driving wasmd in `make bench`.

wasmd's CLI takes about 0.2 s per transaction; the load generator needs tens of thousands
signed before a phase starts. This builds them by hand: the few protobuf messages a
CosmWasm call needs (encoded as gogoproto does, zero values omitted), secp256k1 signatures
over the SignDoc's SHA-256 (coincurve, low-S), bech32 addresses.

    TxRaw    { body_bytes = 1, auth_info_bytes = 2, signatures = 3 }
    TxBody   { messages = 1 (Any) }
    AuthInfo { signer_infos = 1 { public_key = 1 (Any), mode_info = 2 { single = 1 { mode = 1 } },
               sequence = 3 }, fee = 2 { amount = 1 (Coin), gas_limit = 2 } }
    SignDoc  { body_bytes = 1, auth_info_bytes = 2, chain_id = 3, account_number = 4 }
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coincurve import PrivateKey
from Crypto.Hash import RIPEMD160

SIGN_MODE_DIRECT = 1
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


# -- protobuf, as gogoproto writes it ---------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    """A length-delimited field; empty ones are omitted, as proto3 does."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data if data else b""


def _uint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _any(type_url: str, value: bytes) -> bytes:
    return _bytes_field(1, type_url.encode()) + _bytes_field(2, value)


# -- bech32 (BIP-173) -----------------------------------------------------------------------


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= generator[i] if (top >> i) & 1 else 0
    return checksum


def bech32(prefix: str, data: bytes) -> str:
    words, accumulator, bits = [], 0, 0
    for byte in data:  # 8-bit bytes to 5-bit words
        accumulator = accumulator << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append(accumulator >> bits & 31)
    if bits:
        words.append(accumulator << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]
    checksum = _polymod(expanded + words + [0] * 6) ^ 1
    words += [checksum >> 5 * (5 - i) & 31 for i in range(6)]
    return prefix + "1" + "".join(BECH32_CHARSET[w] for w in words)


# -- accounts and transactions --------------------------------------------------------------


@dataclass
class Account:
    """A secp256k1 account with its number in the chain and its next sequence."""

    key: PrivateKey
    number: int
    sequence: int = 0
    prefix: str = "wasm"

    @property
    def public_key(self) -> bytes:
        return self.key.public_key.format(compressed=True)

    @property
    def address(self) -> str:
        return bech32(self.prefix, RIPEMD160.new(hashlib.sha256(self.public_key).digest()).digest())

    def sign_tx(self, messages: list[bytes], chain_id: str, gas_limit: int) -> bytes:
        """A TxRaw holding `messages` (each an encoded Any), at this account's next sequence."""
        body = b"".join(_bytes_field(1, message) for message in messages)
        public_key = _any("/cosmos.crypto.secp256k1.PubKey", _bytes_field(1, self.public_key))
        mode = _bytes_field(1, _uint_field(1, SIGN_MODE_DIRECT))
        signer = _bytes_field(1, public_key) + _bytes_field(2, mode) + _uint_field(3, self.sequence)
        fee = _uint_field(2, gas_limit)  # no fee: the bench's nodes take a minimum gas price of 0
        auth_info = _bytes_field(1, signer) + _bytes_field(2, fee)
        sign_doc = (_bytes_field(1, body) + _bytes_field(2, auth_info) + _bytes_field(3, chain_id.encode())
                    + _uint_field(4, self.number))
        signature = self.key.sign_recoverable(sign_doc, hasher=lambda data: hashlib.sha256(data).digest())[:64]
        self.sequence += 1
        return _bytes_field(1, body) + _bytes_field(2, auth_info) + _bytes_field(3, signature)


def execute_contract(sender: str, contract: str, msg: bytes) -> bytes:
    """cosmwasm.wasm.v1.MsgExecuteContract as an Any."""
    value = _bytes_field(1, sender.encode()) + _bytes_field(2, contract.encode()) + _bytes_field(3, msg)
    return _any("/cosmwasm.wasm.v1.MsgExecuteContract", value)


def store_code(sender: str, wasm: bytes) -> bytes:
    """cosmwasm.wasm.v1.MsgStoreCode as an Any."""
    return _any("/cosmwasm.wasm.v1.MsgStoreCode", _bytes_field(1, sender.encode()) + _bytes_field(2, wasm))


def instantiate_contract(sender: str, code_id: int, label: str, msg: bytes) -> bytes:
    """cosmwasm.wasm.v1.MsgInstantiateContract (no admin, no funds) as an Any."""
    value = (_bytes_field(1, sender.encode()) + _uint_field(3, code_id) + _bytes_field(4, label.encode())
             + _bytes_field(5, msg))
    return _any("/cosmwasm.wasm.v1.MsgInstantiateContract", value)


def query_request(contract: str, query: bytes) -> bytes:
    """cosmwasm.wasm.v1.QuerySmartContractStateRequest: { address = 1, query_data = 2 }."""
    return _bytes_field(1, contract.encode()) + _bytes_field(2, query)
