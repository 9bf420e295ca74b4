"""A validator's own copy of one cluster's state, rebuilt from Swarm alone and kept between checkpoints.

To judge a checkpoint, a validator follows the history records back from the one the
checkpoint names (content addresses: the reference the members attested pins every earlier
record through the `previous` links) to the last block it already replayed, checks them
(contents, links, commit signatures from the validator set it trusted last), and
re-executes every block with the cluster's code and settings from the genesis in Swarm. It
endorses only an app_hash it computed itself.

Two kinds of failure are kept apart. `CannotJudge`: something this validator could not get
or check on its own side (Swarm does not have a record, the genesis or code in Swarm is not
the cluster's, Ethereum is down); it waits and tries again, and never turns that into a
verdict. `Judgement(agrees=False)`: the history re-executes to another state than the
cluster recorded or attested; that is evidence for a dispute (docs/validation.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rtc.abci import PublicKey, abci_pb
from rtc.cometbft import GenesisDoc
from rtc.cometbft.lightclient import parse_header
from rtc.history.reader import HistoryReader, Located
from rtc.history.record import HistoryError
from rtc.node.app import ClusterApp
from rtc.node.config import GenesisAppState
from rtc.node.restore import Divergence, replay_block
from rtc.state import StateStore
from rtc.swarm import ChunkInvalid, Swarm, SwarmError
from rtc.vm import Backend, load_backend

log = logging.getLogger("rtc.validator")

PROGRESS_NAME = "progress.json"


class CannotJudge(Exception):
    """This validator cannot re-execute the checkpoint yet; the message says what it waits for."""


@dataclass(frozen=True)
class ClusterSource:
    """Where a cluster's code and genesis are, as the contracts name them."""

    cluster_id: int
    code_reference: bytes
    code_hash: bytes
    genesis_reference: bytes


@dataclass(frozen=True)
class Judgement:
    cluster_id: int
    height: int
    agrees: bool  # the history re-executes to the checkpoint's app_hash
    app_hash: bytes  # what this validator computed at `height` (or at the block that diverged)
    replayed: int  # blocks re-executed for this judgement
    detail: str = ""  # for a disagreement: what differs, where

    def to_json(self) -> dict[str, Any]:
        return {"cluster_id": self.cluster_id, "height": self.height, "agrees": self.agrees,
                "app_hash": self.app_hash.hex(), "replayed": self.replayed, "detail": self.detail}


@dataclass
class Progress:
    """How far this replica got: kept beside its state, saved after every judgement."""

    height: int = 0
    record: str = ""  # reference of record `height`
    next_validators_hash: str = ""  # whom to believe for the commit of block height+1
    judged: dict[str, list[str]] = field(default_factory=dict)  # height -> [record, app_hash] of checkpoints

    @classmethod
    def load(cls, path: Path) -> "Progress":
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self), sort_keys=True))
        partial.replace(path)


class Replica:
    def __init__(self, folder: Path, swarm: Swarm, source: ClusterSource) -> None:
        self.folder = folder
        self.swarm = swarm
        self.source = source
        folder.mkdir(parents=True, exist_ok=True)
        self.progress = Progress.load(folder / PROGRESS_NAME)
        if (folder / "state").exists():
            store = StateStore.open(folder / "state")
            height = store.height or 0
            store.close()
            if height != self.progress.height:  # stopped between committing a block and saving progress
                log.warning("replica of cluster %d holds height %d but its progress says %d; replaying from genesis",
                            source.cluster_id, height, self.progress.height)
                self.reset()

    # -- what the cluster is ----------------------------------------------------------

    def _download(self, reference: bytes, what: str) -> bytes:
        try:
            return self.swarm.download(reference)
        except SwarmError as exc:
            raise _unreadable(f"{what} {reference.hex()[:16]}…", exc) from None

    def _genesis(self) -> GenesisDoc:
        data = self._download(self.source.genesis_reference, "the genesis")
        try:
            genesis = GenesisDoc.from_json(orjson.loads(data))
            app_state = GenesisAppState.of(genesis)
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CannotJudge(f"the genesis in Swarm is not a cluster genesis: {exc}") from None
        if app_state.code_hash != self.source.code_hash:
            raise CannotJudge("the genesis in Swarm names another code hash than the Registry holds for the cluster")
        return genesis

    def _backend(self, genesis: GenesisDoc) -> Backend:
        code = self._download(self.source.code_reference, "the backend")
        if hashlib.sha256(code).digest() != self.source.code_hash:
            raise CannotJudge("the backend in Swarm does not have the code hash the Registry holds for the cluster")
        return load_backend(code, GenesisAppState.of(genesis).settings.limits)

    # -- judging ------------------------------------------------------------------------

    def judge(self, height: int, record_reference: bytes, app_hash: bytes, interval: int) -> Judgement:
        """Re-execute the cluster up to `height` and compare with the checkpoint (`record_reference`,
        `app_hash`); every `interval`-th height passed on the way is remembered, to judge it later."""
        known = self.progress.judged.get(str(height))
        if known is not None:  # replayed past it already (a replacement draw of an older checkpoint)
            agrees = bytes.fromhex(known[0]) == record_reference and bytes.fromhex(known[1]) == app_hash
            return Judgement(self.source.cluster_id, height, agrees, bytes.fromhex(known[1]), 0,
                             "" if agrees else "the checkpoint names another record or state than this "
                                               "validator replayed at that height")
        if height <= self.progress.height:
            # Replayed past it without keeping it (a juror of a member's dispute about its own last
            # height, after validating a later checkpoint): judged on a scratch replica from genesis.
            scratch = Replica(self.folder / "scratch", self.swarm, self.source)
            scratch.reset()
            try:
                return scratch.judge(height, record_reference, app_hash, interval)
            finally:
                shutil.rmtree(scratch.folder, ignore_errors=True)
        genesis = self._genesis()
        reader = HistoryReader(self.swarm, b"", genesis.chain_id)
        try:
            top = Located(record_reference, reader.record(record_reference))
        except SwarmError as exc:
            raise _unreadable("the checkpoint's record", exc) from None
        except HistoryError as exc:
            return self._disagree(height, b"", f"the checkpoint's record is malformed: {exc}")
        if top.record.height != height:
            return self._disagree(height, b"", f"the checkpoint's record is of height {top.record.height}")
        try:
            records = reader.walk_back(top, max(self.progress.height, 1))
        except SwarmError as exc:
            raise _unreadable("a record before the checkpoint", exc) from None
        except HistoryError as exc:
            return self._disagree(height, b"", f"the record chain is broken: {exc}")
        return self._replay(genesis, reader, records, height, app_hash, interval)

    def _replay(self, genesis: GenesisDoc, reader: HistoryReader, records: list[Located], height: int,
                app_hash: bytes, interval: int) -> Judgement:
        if self.progress.height:  # records[0] is the last one replayed before: the chain must go on from it
            if records[0].reference.hex() != self.progress.record:
                return self._disagree(height, b"", f"the records do not lead back to record {self.progress.height}, "
                                                   "which this validator replayed before")
            trusted, checked = bytes.fromhex(self.progress.next_validators_hash), records[1:]
        else:
            trusted, checked = genesis.validators_hash(), records
        if parse_header(checked[0].record.header).validators_hash != trusted:
            return self._disagree(height, b"", f"record {checked[0].record.height} is signed by another validator set "
                                               "than the one the block before it named")
        try:
            for _ in reader.verify(records, None):  # contents, commit signatures, links
                pass
        except HistoryError as exc:
            return self._disagree(height, b"", str(exc))
        backend = self._backend(genesis)
        settings = GenesisAppState.of(genesis).settings
        store = StateStore.open(self.folder / "state")
        replayed = 0
        diverged = ""
        try:
            app = ClusterApp(store, backend, settings)
            if store.height is None:
                self._init_chain(app, genesis, checked[0].record.header)
            for located in checked:
                record = located.record
                # Past a block that re-executes differently, this replica goes on with the state
                # its own execution gives (a dispute claims it; jurors replay the same way).
                computed_here = replay_block(app, record, strict=False)
                if computed_here != record.app_hash and not diverged:
                    diverged = str(Divergence(record.height, record.app_hash, computed_here))
                replayed += 1
                self.progress.height, self.progress.record = record.height, located.reference.hex()
                self.progress.next_validators_hash = parse_header(record.header).next_validators_hash.hex()
                if record.height % interval == 0:
                    self.progress.judged[str(record.height)] = [located.reference.hex(), computed_here.hex()]
                self.progress.save(self.folder / PROGRESS_NAME)
            computed = store.root
        finally:
            store.close()
        agrees = computed == app_hash
        detail = "" if agrees else (f"the re-executed state at {height} is {computed.hex()[:16]}…, the checkpoint's "
                                    f"{app_hash.hex()[:16]}…" + (f" (first: {diverged})" if diverged else ""))
        return Judgement(self.source.cluster_id, height, agrees, computed, replayed, detail)

    def _init_chain(self, app: ClusterApp, genesis: GenesisDoc, first_header: dict[str, Any]) -> None:
        request = abci_pb.RequestInitChain(chain_id=genesis.chain_id, initial_height=1,
                                           app_state_bytes=orjson.dumps(genesis.app_state))
        for validator in genesis.validators:
            request.validators.append(abci_pb.ValidatorUpdate(pub_key=PublicKey(ed25519=validator.pub_key),
                                                              power=validator.power))
        response = app.init_chain(request)
        if response.app_hash != parse_header(first_header).app_hash:
            raise CannotJudge("the genesis in Swarm does not give the app_hash the cluster's first block commits to")

    def _disagree(self, height: int, app_hash: bytes, detail: str) -> Judgement:
        return Judgement(self.source.cluster_id, height, False, app_hash, 0, detail)

    def reset(self) -> None:
        """Forget this replica (its next judgement replays from genesis)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.progress = Progress()


def _unreadable(what: str, exc: SwarmError) -> CannotJudge:
    """Swarm's failure, as a reason to wait (never a verdict: the cluster may be right)."""
    if isinstance(exc, ChunkInvalid):
        return CannotJudge(f"{what} came back from Swarm not matching its address (a corrupt store or a lying "
                           f"Swarm node; the validator waits, or point it at another Swarm node): {exc}")
    return CannotJudge(f"{what} is not in Swarm yet: {exc}")
