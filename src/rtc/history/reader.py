"""Reading a node's history back from Swarm and checking it link by link.

The node's feed (owner, topic of the chain) at index H-1 names the head uploaded after
block H; the head names record H and the newest snapshot. Records chain backwards by
`previous`. Trust starts from a validator set the reader already believes (the genesis
file's, by hash) and is carried forward by each header's `next_validators_hash`; every
commit must carry more than 2/3 of its validator set's power.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rtc.client.lightclient import VerificationError, parse_header, verify_commit
from rtc.swarm import Swarm

from .record import BlockRecord, RecordError, check_contents, check_link
from .snapshot import Manifest
from .uploader import Head, history_topic


@dataclass(frozen=True)
class Located:
    reference: bytes
    record: BlockRecord


class HistoryReader:
    def __init__(self, swarm: Swarm, owner: bytes, chain_id: str) -> None:
        self.swarm = swarm
        self.owner = owner
        self.chain_id = chain_id
        self.topic = history_topic(chain_id)

    def head(self) -> Head:
        """The newest head the node published."""
        latest = self.swarm.latest_feed(self.owner, self.topic)
        if latest is None:
            raise RecordError(f"feed owner {self.owner.hex()} has published no history for chain {self.chain_id}")
        return self._head(latest[1])

    def head_at(self, height: int) -> Head:
        if height < 1:
            raise RecordError("heights start at 1")
        return self._head(self.swarm.feed_at(self.owner, self.topic, height - 1))

    def _head(self, reference: bytes) -> Head:
        try:
            head = Head.decode(self.swarm.download(reference))
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        if head.chain_id != self.chain_id:
            raise RecordError(f"the feed's head is for chain {head.chain_id}, not {self.chain_id}")
        return head

    def record(self, reference: bytes) -> BlockRecord:
        record = BlockRecord.decode(self.swarm.download(reference))
        if record.chain_id != self.chain_id:
            raise RecordError(f"record {reference.hex()} is for chain {record.chain_id}, not {self.chain_id}")
        return record

    def record_at(self, height: int) -> Located:
        reference = self.head_at(height).record
        record = self.record(reference)
        if record.height != height:
            raise RecordError(f"the head for height {height} names a record of height {record.height}")
        return Located(reference, record)

    def manifest(self, reference: bytes) -> Manifest:
        return Manifest.decode(self.swarm.download(reference))

    def walk_back(self, start: Located, to_height: int) -> list[Located]:
        """Records from `to_height` up to `start`, found by following `previous` links."""
        chain = [start]
        while chain[-1].record.height > to_height:
            previous = chain[-1].record.previous
            if previous is None:
                raise RecordError(f"record {chain[-1].record.height} has no previous record to follow")
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
                raise RecordError(f"record {record.height} was signed by a validator set other than the trusted one; "
                                  "verify from an earlier height, or the set changed and needs another anchor")
            try:
                verified = verify_commit(self.chain_id, {"header": record.header, "commit": record.commit},
                                         record.validators, header.validators_hash, height=record.height)
            except VerificationError as exc:
                raise RecordError(f"record {record.height}: {exc}") from None
            if index:
                check_link(records[index - 1].record, record, records[index - 1].reference)
            yield (f"record {record.height} ({located.reference.hex()[:12]}…): {len(record.txs)} txs, "
                   f"{verified.signed_power}/{verified.total_power} power signed"
                   + (", links to the previous record" if index else ""))
