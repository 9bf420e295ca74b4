"""Reading a node's history back from Swarm and checking it link by link.

The node's feed (owner, topic of the chain) at index H-1 names the head uploaded after
block H; the head names record H and the newest snapshot. Records chain backwards by
`previous`. Trust starts from a validator set the reader already believes (the genesis
file's, by hash) and is carried forward by each header's `next_validators_hash`; every
commit must carry more than 2/3 of its validator set's power.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from rtc.cometbft.lightclient import VerificationError, parse_header, verify_commit
from rtc.swarm import Swarm

from .record import BlockRecord, Head, HistoryError, check_contents, check_link, history_topic
from .snapshot import Manifest


@dataclass(frozen=True)
class Located:
    reference: bytes
    record: BlockRecord


class HistoryReader:
    def __init__(self, swarm: Swarm, owner: bytes, chain_id: str, first_height: int = 1) -> None:
        """`first_height`: the chain's initial height (its genesis'), whose head is feed update 0."""
        self.swarm = swarm
        self.owner = owner
        self.chain_id = chain_id
        self.topic = history_topic(chain_id)
        self.first_height = first_height

    def head(self) -> Head:
        """The newest head the node published."""
        latest = self.swarm.latest_feed(self.owner, self.topic)
        if latest is None:
            raise HistoryError(f"feed owner {self.owner.hex()} has published no history for chain {self.chain_id}")
        return self._head(latest[1])

    def head_at(self, height: int) -> Head:
        if height < self.first_height:
            raise HistoryError(f"this chain's heights start at {self.first_height}")
        return self._head(self.swarm.feed_at(self.owner, self.topic, height - self.first_height))

    def _head(self, reference: bytes) -> Head:
        head = Head.decode(self.swarm.download(reference))
        if head.chain_id != self.chain_id:
            raise HistoryError(f"the feed's head is for chain {head.chain_id}, not {self.chain_id}")
        return head

    def record(self, reference: bytes) -> BlockRecord:
        record = BlockRecord.decode(self.swarm.download(reference))
        if record.chain_id != self.chain_id:
            raise HistoryError(f"record {reference.hex()} is for chain {record.chain_id}, not {self.chain_id}")
        return record

    def record_at(self, height: int) -> Located:
        reference = self.head_at(height).record
        record = self.record(reference)
        if record.height != height:
            raise HistoryError(f"the head for height {height} names a record of height {record.height}")
        return Located(reference, record)

    def manifest(self, reference: bytes) -> Manifest:
        return Manifest.decode(self.swarm.download(reference))

    def walk_back(self, start: Located, to_height: int) -> list[Located]:
        """Records from `to_height` up to `start`, found by following `previous` links."""
        chain = [start]
        while chain[-1].record.height > to_height:
            previous = chain[-1].record.previous
            if previous is None:
                raise HistoryError(f"record {chain[-1].record.height} has no previous record to follow")
            chain.append(Located(previous, self.record(previous)))
        return chain[::-1]

    def verify(self, records: list[Located], trusted_validators_hash: bytes | None) -> Iterator[str]:
        """Check each record and each link, yielding one line per record that passed.

        `trusted_validators_hash`: the set believed at the first record (None: only
        internal consistency, which a forger controlling the history could also produce).
        """
        for index, located in enumerate(records):
            record = located.record
            check_contents(record)
            header = parse_header(record.header)
            if index == 0 and trusted_validators_hash is not None and header.validators_hash != trusted_validators_hash:
                raise HistoryError(f"record {record.height} was signed by a validator set other than the trusted one; "
                                  "verify from an earlier height, or the set changed and needs another anchor")
            try:
                verified = verify_commit(self.chain_id, {"header": record.header, "commit": record.commit},
                                         record.validators, header.validators_hash, height=record.height)
            except VerificationError as exc:
                raise HistoryError(f"record {record.height}: {exc}") from None
            if index:
                check_link(records[index - 1].record, record, records[index - 1].reference)
            yield (f"record {record.height} ({located.reference.hex()[:12]}…): {len(record.txs)} txs, "
                   f"{verified.signed_power}/{verified.total_power} power signed"
                   + (", links to the previous record" if index else ""))


    def locate(self, written: int, verified_height: int, block_hash: bytes, max_walk: int = 256,
               wait_seconds: float = 3.0) -> "HistoryStatus":
        """Find the record of block `written` through the records from block `verified_height`
        (whose hash, `block_hash`, a client holds from a header it verified) back to the one
        before `written`, checking every link. The SDK's `HistoryCheck`.

        Record H is uploaded once block H+1 exists, so a fresh result is given `wait_seconds`."""
        deadline = time.monotonic() + wait_seconds
        newest = self.head().height
        while newest < verified_height and time.monotonic() < deadline:
            time.sleep(0.2)
            newest = self.head().height
        if newest < verified_height:
            return HistoryStatus(False, written, newest, block_hash, note=f"uploaded up to block {newest} so far")
        if verified_height - written > max_walk:
            return HistoryStatus(False, written, newest, block_hash,
                                 note=f"more than {max_walk} blocks before the verified one")
        top = self.record_at(verified_height)
        if top.record.block_hash != block_hash:
            raise HistoryError(f"the record of block {verified_height} in Swarm is not the block the signatures cover")
        chain = self.walk_back(top, max(1, written - 1))
        for earlier, later in zip(chain, chain[1:]):
            check_contents(later.record)
            check_link(earlier.record, later.record, earlier.reference)
        found = next(located for located in chain if located.record.height == written)
        return HistoryStatus(True, written, newest, block_hash, found.reference,
                             "its record is in Swarm and links to the previous block's record" if written > 1 else
                             "its record is in Swarm (the first block)")


@dataclass(frozen=True)
class HistoryStatus:
    """Whether the block that wrote a result is in Swarm, linked up to the block a client verified."""

    in_swarm: bool
    height: int  # the block that wrote the result
    newest_uploaded: int
    anchor: bytes  # the hash of the verified block the records were linked up to
    record: bytes | None = None  # its record's Swarm reference
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {"in_swarm": self.in_swarm, "height": self.height, "newest_uploaded": self.newest_uploaded,
                "anchor": self.anchor.hex(), "record": self.record.hex() if self.record else None, "note": self.note}
