"""One block's history record, and the head a node's feed points to: what Swarm keeps so a
block can be re-checked and replayed.

A record holds block H as CometBFT decided it (header, the canonical commit with its
signatures, the validator set that signed), the raw transactions, the deterministic part
of each transaction's result, the `app_hash` after H, and the Swarm reference of record
H-1. It is built from CometBFT's RPC once block H+1 exists, because only then is the
commit of H canonical (the `last_commit` in block H+1), so every node builds the same
bytes and Swarm stores each record once however many nodes upload it.

Every field can be checked: the header hash against the commit's block id, the
signatures against the validator set (whose hash is in the header), the transactions
against `data_hash`, and the results and `app_hash` against header H+1 in the next record.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from eth_utils import keccak

from rtc.cometbft.lightclient import TxResult, header_hash, parse_header, results_hash, txs_hash

FORMAT = "rtc-history/1"
HEAD_FORMAT = "rtc-head/1"
MAX_RECORD_BYTES = 64 * 1024 * 1024


class HistoryError(ValueError):
    """A history record or head that is malformed, or a history that does not check out; the message says what."""


def _reference(value: str, name: str) -> bytes:
    """A Swarm reference as a record writes it: 64 hex digits (bytes.fromhex alone would take "\r" as no bytes)."""
    reference = bytes.fromhex(value)
    if len(reference) != 32:
        raise HistoryError(f"malformed history record: {name} is {len(reference)} bytes, not a 32-byte Swarm reference")
    return reference


@dataclass(frozen=True)
class BlockRecord:
    chain_id: str
    height: int
    header: dict[str, Any]  # CometBFT RPC JSON of the header
    commit: dict[str, Any]  # the canonical commit of this block (signatures included)
    validators: list[dict[str, Any]]  # the set that signed, RPC JSON
    txs: list[bytes]
    results: list[dict[str, Any]]  # {"code", "data" (base64), "gas_wanted", "gas_used"} per transaction
    app_hash: bytes  # the state root after this block
    previous: bytes | None  # Swarm reference of the record of height - 1 (None for the first one)
    snapshot: bytes | None = None  # Swarm reference of a state snapshot after this block, when one was taken

    def encode(self) -> bytes:
        """Canonical JSON: the same record gives the same bytes, hence the same Swarm reference."""
        return orjson.dumps({
            "format": FORMAT, "chain_id": self.chain_id, "height": self.height,
            "header": self.header, "commit": self.commit, "validators": self.validators,
            "txs": [base64.b64encode(tx).decode() for tx in self.txs], "results": self.results,
            "app_hash": self.app_hash.hex(), "previous": self.previous.hex() if self.previous else None,
            "snapshot": self.snapshot.hex() if self.snapshot else None,
        }, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def decode(cls, data: bytes) -> "BlockRecord":
        if len(data) > MAX_RECORD_BYTES:
            raise HistoryError(f"a history record of {len(data)} bytes exceeds {MAX_RECORD_BYTES}")
        try:
            raw = orjson.loads(data)
            if raw.get("format") != FORMAT:
                raise HistoryError(f"not a history record of format {FORMAT}")
            return cls(
                chain_id=str(raw["chain_id"]), height=int(raw["height"]), header=dict(raw["header"]),
                commit=dict(raw["commit"]), validators=list(raw["validators"]),
                txs=[base64.b64decode(tx, validate=True) for tx in raw["txs"]], results=list(raw["results"]),
                app_hash=bytes.fromhex(raw["app_hash"]),
                previous=_reference(raw["previous"], "previous") if raw["previous"] else None,
                snapshot=_reference(raw["snapshot"], "snapshot") if raw.get("snapshot") else None,
            )
        except HistoryError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HistoryError(f"malformed history record: {exc}") from None

    @property
    def block_hash(self) -> bytes:
        return header_hash(self.header)

    def summary(self) -> dict[str, Any]:
        return {"height": self.height, "block_hash": self.block_hash.hex(), "app_hash": self.app_hash.hex(),
                "txs": len(self.txs), "signatures": sum(1 for s in self.commit["signatures"] if s.get("signature")),
                "validators": len(self.validators), "previous": self.previous.hex() if self.previous else None,
                "snapshot": self.snapshot.hex() if self.snapshot else None}


def history_topic(chain_id: str) -> bytes:
    """The feed topic every node of a cluster publishes its history head under."""
    return keccak(b"rtc/history/v1/" + chain_id.encode())


@dataclass(frozen=True)
class Head:
    """What a node's feed points to: the newest record it uploaded and the newest snapshot."""

    chain_id: str
    height: int
    record: bytes
    snapshot: dict[str, Any] | None  # {"height": S, "manifest": hex reference}

    def encode(self) -> bytes:
        return orjson.dumps({"format": HEAD_FORMAT, "chain_id": self.chain_id, "height": self.height,
                             "record": self.record.hex(), "snapshot": self.snapshot}, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def decode(cls, data: bytes) -> "Head":
        try:
            raw = orjson.loads(data)
            if raw.get("format") != HEAD_FORMAT:
                raise HistoryError(f"not a history head of format {HEAD_FORMAT}")
            return cls(str(raw["chain_id"]), int(raw["height"]), bytes.fromhex(raw["record"]), raw.get("snapshot"))
        except HistoryError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise HistoryError(f"malformed history head: {exc}") from None


def _tx_results(results: list[dict[str, Any]]) -> list[TxResult]:
    return [TxResult(int(r["code"]), base64.b64decode(r["data"] or ""), int(r["gas_wanted"]), int(r["gas_used"]))
            for r in results]


def check_contents(record: BlockRecord) -> None:
    """What a record proves about itself: its transactions are the block's, its commit is for this header."""
    header = parse_header(record.header)
    if header.height != record.height or header.chain_id != record.chain_id:
        raise HistoryError(f"record {record.height}: the header is for height {header.height} of {header.chain_id}")
    if txs_hash(record.txs) != header.data_hash:
        raise HistoryError(f"record {record.height}: the transactions do not hash to the header's data_hash")
    if len(record.results) != len(record.txs):
        raise HistoryError(f"record {record.height}: {len(record.results)} results for {len(record.txs)} transactions")
    block_id = record.commit.get("block_id", {}).get("hash", "")
    if bytes.fromhex(block_id or "00") != record.block_hash:
        raise HistoryError(f"record {record.height}: the commit is for another block than the header")


def check_link(earlier: BlockRecord, later: BlockRecord, earlier_reference: bytes) -> None:
    """Record H+1 continues record H: parent hash, Swarm link, validator sets, results and app_hash."""
    if later.height != earlier.height + 1:
        raise HistoryError(f"record {later.height} does not follow record {earlier.height}")
    if later.previous != earlier_reference:
        raise HistoryError(f"record {later.height} links to {later.previous.hex() if later.previous else None}, "
                          f"not to record {earlier.height} ({earlier_reference.hex()})")
    header = parse_header(later.header)
    before = parse_header(earlier.header)
    if header.last_block_id.hash != earlier.block_hash:
        raise HistoryError(f"header {later.height} names another parent than block {earlier.height}")
    if header.validators_hash != before.next_validators_hash:
        raise HistoryError(f"header {later.height}: validator set other than the one block {earlier.height} named")
    if header.app_hash != earlier.app_hash:
        raise HistoryError(f"record {earlier.height}: app_hash {earlier.app_hash.hex()[:16]}… is not the one "
                          f"header {later.height} commits to ({header.app_hash.hex()[:16]}…)")
    if header.last_results_hash != results_hash(_tx_results(earlier.results)):
        raise HistoryError(f"record {earlier.height}: the results do not hash to header {later.height}'s last_results_hash")
