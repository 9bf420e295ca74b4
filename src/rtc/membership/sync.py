"""The Ethereum-sync transaction and the deterministic rule that turns it into validator updates.

The validator set follows the cluster's members in the Registry contract. A node cannot
ask Ethereum during FinalizeBlock (its endpoint may be down, slow or behind, and the
answer would differ between nodes), so the proposer puts what it saw into the block: an
Ethereum block (number and hash) it considers final and the cluster's members at that
block: each one's validator key and the address of its attester (the secp256k1 key it signs
state attestations with, `rtc.protocol.attestation`; zero while it has none). Every validator checks that claim against its own endpoint in ProcessProposal
(`rtc.membership.watcher`); once the block is decided, FinalizeBlock applies the keys it
carries and nothing else, so every node derives the same updates.

Layout (all integers big-endian):

    offset  size  field
    0       4     magic b"ETH\\x02"
    4       8     Ethereum block number (u64)
    12      32    Ethereum block hash
    44      1     n, the number of members (1..16)
    45      52*n  per member, by validator key strictly ascending: its ed25519 validator key (32)
                  and its attester's address (20; zero: none yet)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

SYNC_MAGIC = b"ETH\x02"
HEADER = struct.Struct(">4sQ32sB")
KEY_BYTES = 32
ADDRESS_BYTES = 20
MEMBER_BYTES = KEY_BYTES + ADDRESS_BYTES
NO_ATTESTER = bytes(ADDRESS_BYTES)
MAX_MEMBERS = 16  # the contract's MAX_MEMBERS
VALIDATOR_POWER = 10  # every member has the same voting power
MAX_ADDED_PER_SYNC = 1  # new validators one sync may bring in; removals are not limited


class SyncError(ValueError):
    """A sync transaction that is malformed or breaks a rule; the message says which."""


class Unconfirmed(Exception):
    """This node cannot confirm a proposed sync against its own Ethereum endpoint; the message says why."""


@dataclass(frozen=True)
class EthereumSettings:
    """Which contract the cluster follows, and when an Ethereum block counts as final.

    Part of the cluster settings in genesis (every node must follow the same contracts).
    `confirmations` None uses the chain's own `finalized` block (proof-of-stake Ethereum);
    a number N takes `latest - N`, for chains without finality such as a local anvil.
    """

    chain_id: int
    registry: str
    cluster_id: int
    confirmations: int | None = None
    validation: str | None = None  # the Validation contract members attest to (None: no attestations)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"chain_id": self.chain_id, "registry": self.registry, "cluster_id": self.cluster_id,
                                "confirmations": self.confirmations}
        if self.validation is not None:
            data["validation"] = self.validation
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EthereumSettings":
        confirmations = data.get("confirmations")
        validation = data.get("validation")
        return cls(int(data["chain_id"]), str(data["registry"]), int(data["cluster_id"]),
                   None if confirmations is None else int(confirmations),
                   None if validation is None else str(validation))


@dataclass(frozen=True)
class EthereumSync:
    block_number: int
    block_hash: bytes
    members: tuple[bytes, ...]  # validator keys, strictly ascending
    attesters: tuple[bytes, ...] = ()  # each member's attester address (NO_ATTESTER: none); () for none at all

    def __post_init__(self) -> None:
        if not self.attesters:
            object.__setattr__(self, "attesters", (NO_ATTESTER,) * len(self.members))
        if len(self.attesters) != len(self.members):
            raise SyncError(f"{len(self.attesters)} attesters for {len(self.members)} members")

    def encode(self) -> bytes:
        return HEADER.pack(SYNC_MAGIC, self.block_number, self.block_hash, len(self.members)) + b"".join(
            key + attester for key, attester in zip(self.members, self.attesters))

    @property
    def attester_of(self) -> dict[bytes, bytes]:
        """Validator key -> attester address, for the members that have one."""
        return {key: attester for key, attester in zip(self.members, self.attesters) if attester != NO_ATTESTER}

    def describe(self) -> str:
        return f"Ethereum block {self.block_number} ({self.block_hash.hex()[:12]}…), {len(self.members)} members"


def is_sync(tx: bytes) -> bool:
    return tx[:4] == SYNC_MAGIC


def decode_sync(tx: bytes) -> EthereumSync:
    if len(tx) < HEADER.size:
        raise SyncError(f"sync transaction of {len(tx)} bytes is shorter than its {HEADER.size}-byte header")
    magic, number, block_hash, count = HEADER.unpack_from(tx)
    if magic != SYNC_MAGIC:
        raise SyncError("not a sync transaction")
    if not 1 <= count <= MAX_MEMBERS:
        raise SyncError(f"a sync names 1 to {MAX_MEMBERS} members, not {count}")
    if len(tx) != HEADER.size + MEMBER_BYTES * count:
        raise SyncError(f"sync transaction of {len(tx)} bytes does not hold the {count} members its header announces")
    entries = [tx[HEADER.size + i * MEMBER_BYTES: HEADER.size + (i + 1) * MEMBER_BYTES] for i in range(count)]
    members = tuple(entry[:KEY_BYTES] for entry in entries)
    if any(a >= b for a, b in zip(members, members[1:])):
        raise SyncError("a sync lists its member keys in strictly ascending order, each once")
    attesters = tuple(entry[KEY_BYTES:] for entry in entries)
    named = [attester for attester in attesters if attester != NO_ATTESTER]
    if len(set(named)) != len(named):
        raise SyncError("a sync names one attester for two members")
    return EthereumSync(number, block_hash, members, attesters)


@dataclass(frozen=True)
class Membership:
    """What the state records about the last sync: the Ethereum block and the validator set."""

    block_number: int = 0
    block_hash: bytes = b""
    validators: dict[bytes, int] = field(default_factory=dict)  # key -> power
    height: int = 0  # the cluster block that applied the sync (0: the genesis set)
    attesters: dict[bytes, bytes] = field(default_factory=dict)  # validator key -> attester address

    def to_json(self) -> dict[str, Any]:
        return {"block_number": self.block_number, "block_hash": self.block_hash.hex(), "height": self.height,
                "validators": [[key.hex(), power] for key, power in sorted(self.validators.items())],
                "attesters": [[key.hex(), address.hex()] for key, address in sorted(self.attesters.items())]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Membership":
        return cls(int(data["block_number"]), bytes.fromhex(data["block_hash"]),
                   {bytes.fromhex(key): int(power) for key, power in data["validators"]}, int(data["height"]),
                   {bytes.fromhex(key): bytes.fromhex(address) for key, address in data.get("attesters", [])})


def apply_sync(current: Membership, sync: EthereumSync, height: int) -> tuple[Membership, list[tuple[bytes, int]]]:
    """The new membership and the validator updates (key, power; 0 removes), sorted by key.

    Deterministic in the committed state and the transaction alone. An Ethereum block no
    newer than the last one synced is refused, so a stale or replayed sync changes nothing.
    A sync that adds more than one validator is refused too: every member has the same
    power, so two new keys that no process runs would take a third of a cluster of four at
    once and halt it. Members come in one per sync (the proposer steps through Ethereum
    blocks, `rtc.membership.watcher`); any number may leave in one.
    """
    if sync.block_number <= current.block_number:
        raise SyncError(f"{sync.describe()} is not newer than the last synced block {current.block_number}")
    added = added_keys(current, sync)
    if len(added) > MAX_ADDED_PER_SYNC:
        raise SyncError(f"{sync.describe()} adds {len(added)} validators; a sync adds at most {MAX_ADDED_PER_SYNC} "
                        "(propose an earlier Ethereum block at which fewer members had joined)")
    new = {key: VALIDATOR_POWER for key in sync.members}
    updates = [(key, new.get(key, 0)) for key in sorted(current.validators.keys() | new.keys())
               if current.validators.get(key) != new.get(key)]
    return Membership(sync.block_number, sync.block_hash, new, height, sync.attester_of), updates


def added_keys(current: Membership, sync: EthereumSync) -> set[bytes]:
    """The keys the sync would make validators that are not validators now."""
    return set(sync.members) - current.validators.keys()
