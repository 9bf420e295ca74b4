"""The envelope's signed bytes are the protocol: pinned here byte for byte (docs/protocol.md §2),
and a signature holds only in the cluster it was made for."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from rtc.abci import abci_pb
from rtc.membership.sync import EthereumSettings
from rtc.node.config import ClusterSettings
from rtc.protocol import Code, sign
from tests.node.test_app import init, make_app

KEY = SigningKey(b"\x01" * 32)
SESSION = bytes(range(16))
CALL = b'{"function":"sum","x":5,"y":3}'
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CONTRACT = EthereumSettings(chain_id=31337, registry=REGISTRY, cluster_id=1, confirmations=2)


def test_a_call_signed_for_one_cluster_is_refused_by_another_with_the_same_chain_id(tmp_path: Path) -> None:
    """Issue 12: every devnet had chain id `rtc-devnet`, so a signature made for one replayed on the
    next. The signed domain now names the Registry and the cluster as well as the chain."""
    same_chain = sign(KEY, "t", SESSION, 0, b'{"function": "update_high", "symbol": "A", "value": 1.0}').encode()
    settings = ClusterSettings(ethereum=CONTRACT)
    app = make_app(tmp_path / "contract", settings=settings)
    init(app, settings)
    replayed = app.check_tx(abci_pb.RequestCheckTx(tx=same_chain))
    assert replayed.code == Code.BAD_SIGNATURE, "a signature without the cluster's contract must not hold in it"

    from rtc.protocol import SigningDomain

    own = SigningDomain.of("t", CONTRACT)
    accepted = app.check_tx(abci_pb.RequestCheckTx(
        tx=sign(KEY, own, SESSION, 0, b'{"function": "update_high", "symbol": "A", "value": 1.0}').encode()))
    assert accepted.code == Code.OK, accepted.log
    for other in (SigningDomain.of("t", EthereumSettings(31337, REGISTRY, 2)),  # another cluster, same Registry
                  SigningDomain.of("t", EthereumSettings(31337, "0x" + "11" * 20, 1)),  # another Registry
                  SigningDomain.of("t", EthereumSettings(1, REGISTRY, 1))):  # the same address on another chain
        foreign = sign(KEY, other, SESSION, 0, b'{"function": "update_high", "symbol": "A", "value": 1.0}').encode()
        assert app.check_tx(abci_pb.RequestCheckTx(tx=foreign)).code == Code.BAD_SIGNATURE, other


def test_the_signing_bytes_are_pinned() -> None:
    from rtc.protocol import SigningDomain

    envelope = sign(KEY, SigningDomain.of("rtc-devnet-0a1b2c3d", CONTRACT), SESSION, 7, CALL)
    body = (b"RTC\x01" + b"\x00" + bytes(KEY.verify_key) + SESSION + (7).to_bytes(8, "big")
            + len(CALL).to_bytes(4, "big") + CALL)
    domain = (b"rtc/tx/v2\n" + bytes([19]) + b"rtc-devnet-0a1b2c3d"
              + b"\x01" + (31337).to_bytes(8, "big") + bytes.fromhex(REGISTRY[2:]) + (1).to_bytes(32, "big"))
    assert envelope.body() == body
    assert envelope.signed_bytes(SigningDomain.of("rtc-devnet-0a1b2c3d", CONTRACT)) == domain + body
    assert envelope.encode() == body + envelope.signature
    assert envelope.signature == KEY.sign(domain + body).signature  # ed25519 is deterministic
    assert envelope.signature.hex() == PINNED_SIGNATURE
    # Without a contract (a cluster with a fixed validator set): a zero flag byte and nothing else.
    plain = sign(KEY, "t", SESSION, 7, CALL)
    assert plain.signed_bytes("t") == b"rtc/tx/v2\n" + b"\x01t" + b"\x00" + body
    assert SigningDomain.of("t").encode() == b"rtc/tx/v2\n\x01t\x00"


PINNED_SIGNATURE = ("df3978ea071c81dea2571ba4f3c8dfc77f2112890ecc10a5c0ddfeeb0e6992d6"
                    "4baeb01fbdabc850343d67ba5964c6022a31fafe4c569f1183e38b246664dd03")


def test_the_domain_does_not_depend_on_how_the_address_is_written() -> None:
    from rtc.protocol import SigningDomain

    lower = SigningDomain.of("c", EthereumSettings(5, REGISTRY.lower(), 3))
    assert lower == SigningDomain.of("c", CONTRACT.__class__(5, REGISTRY, 3))
    assert lower.encode() == SigningDomain.of("c", EthereumSettings(5, REGISTRY.upper().replace("0X", "0x"), 3)).encode()


@pytest.mark.parametrize("chain, registry, cluster, why", [
    ("x" * 256, REGISTRY, 1, "longer than 255 bytes"),
    ("c", "0x1234", 1, "20-byte address"),
    ("c", "not hex at all, forty characters long!!", 1, "20-byte address"),
    ("c", REGISTRY, -1, "cluster id"),
    ("c", REGISTRY, 2**256, "cluster id"),
])
def test_a_domain_that_cannot_be_encoded_is_refused_with_the_reason(chain: str, registry: str, cluster: int,
                                                                    why: str) -> None:
    from rtc.protocol import EnvelopeError, SigningDomain

    with pytest.raises(EnvelopeError, match=why):
        SigningDomain.of(chain, EthereumSettings(1, registry, cluster)).encode()


def test_the_domain_is_read_from_a_genesis() -> None:
    from rtc.protocol import SigningDomain

    app_state = {"code_hash": "00" * 32, "settings": {"ethereum": CONTRACT.to_json(), "sessions": {}}}
    assert SigningDomain.from_genesis("t", app_state) == SigningDomain.of("t", CONTRACT)
    assert SigningDomain.from_genesis("t", {"code_hash": "00", "settings": {}}) == SigningDomain.of("t")
