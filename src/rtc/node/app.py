"""The replicated state machine: CometBFT's ABCI calls, answered with the backend and the store.

Read it top to bottom in the order CometBFT calls it: Info and InitChain when it
connects, CheckTx for every incoming transaction, PrepareProposal and ProcessProposal to
make and judge a block, ExtendVote and VerifyVoteExtension for the members' attestations,
FinalizeBlock to execute a decided block, Commit to make it durable, Query to read
committed state.

A block opens with at most two transactions no client sends: an Ethereum sync (the
membership, `rtc.membership`) and then the attestations of an earlier state
(`rtc.node.attesting`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import orjson

from rtc.abci import Application, ProofOp, PublicKey, abci_pb
from rtc.membership import Membership, SyncError, Unconfirmed, apply_sync, decode_sync, is_sync
from rtc.protocol import (
    CODESPACE, Code, Envelope, EnvelopeError, JSONInputError, Kind, canonical_json, decode, keys, queries,
    strict_json, tx_digest,
)
from rtc.protocol.attestation import AttestationError, AttestationTx, is_attestation_tx
from rtc.sessions import Refused, Sessions
from rtc.state import StateStore
from rtc.vm import Backend, BlockInfo, CallError, PreparedCall

from .calls import BackendState, Written, block_calls
from .checked import Checked, CheckedCache
from .config import ClusterSettings, GenesisAppState, RestoredFrom
from .statesync import StateSync

if TYPE_CHECKING:  # the node's threads, made by the runner
    from rtc.history.snapshot import Snapshots
    from rtc.membership.watcher import EthereumWatcher

    from .attesting import Attestations

log = logging.getLogger("rtc.node")

APP_VERSION = 1
RESYNC_EVERY_ETH_BLOCKS = 32  # re-sync an unchanged membership this often, so clients see it is current

# What a committed block held and gave, for the history uploader (height, txs, results, app_hash).
CommitListener = Callable[[int, list[bytes], list[abci_pb.ExecTxResult], bytes], None]


class TxError(ValueError):
    """A transaction this node refuses before running it; `code` names the rule."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


class ClusterApp(Application):
    """One node's state machine. Every method is deterministic given the same blocks."""

    def __init__(self, store: StateStore, backend: Backend, settings: ClusterSettings,
                 watcher: EthereumWatcher | None = None, snapshots: Snapshots | None = None,
                 attestations: Attestations | None = None, restored_from: RestoredFrom | None = None) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.watcher = watcher  # this node's view of Ethereum; only proposing and voting use it
        self.snapshots = snapshots  # state snapshots every N blocks, for Swarm and state sync
        self.attestations = attestations  # None: the cluster names no Validation contract
        self.state_sync = StateSync(snapshots)
        self._settings_json = settings.encode()
        self._pending: Any = None  # the overlay of the block finalized but not yet committed
        self._pending_height = 0
        self._pending_block: tuple[list[bytes], list[abci_pb.ExecTxResult], bytes] = ([], [], b"")
        self.on_commit: CommitListener | None = None  # the history uploader's feed
        self._genesis: Any = None  # InitChain's writes, committed with the first block
        self._checked = CheckedCache()  # so each signature and call is checked once per node
        # The fuel each entry point last burned here: PrepareProposal's guess at what a block
        # will spend (a guess may differ between nodes; only proposing uses it).
        self._fuel_seen: dict[str, int] = {}
        # A restored cluster's nodes start holding another cluster's state at `restored_from.height`;
        # until InitChain of this chain has been committed, it is not this chain's state yet.
        self._awaiting_init = restored_from is not None and store.get(keys.RESTORED_FROM_KEY) is None
        chain_id = store.get(keys.CHAIN_ID_KEY)
        self.chain_id = chain_id.decode() if chain_id and not self._awaiting_init else ""
        if store.height and not self._awaiting_init:
            self._check_committed_identity()

    # -- connection and genesis ------------------------------------------------------

    def _check_committed_identity(self) -> None:
        """Refuse to continue a chain with different code or settings than it was built with."""
        stored_code = self.store.get(keys.CODE_HASH_KEY)
        if stored_code != self.backend.code_hash:
            raise RuntimeError(
                f"the state was built by backend {stored_code.hex() if stored_code else None}, "
                f"but this node loaded {self.backend.code_hash.hex()}; start it with the cluster's component"
            )
        if self.store.get(keys.SETTINGS_KEY) != self._settings_json:
            raise RuntimeError("the state was built with other cluster settings than this node's genesis holds")

    def info(self, req: abci_pb.RequestInfo) -> abci_pb.ResponseInfo:
        height = 0 if self._awaiting_init else self.store.height or 0  # 0: CometBFT calls InitChain
        return abci_pb.ResponseInfo(
            data="rtc",
            version="0.1.0",
            app_version=APP_VERSION,
            last_block_height=height,
            last_block_app_hash=self.store.root if height else b"",
        )

    def init_chain(self, req: abci_pb.RequestInitChain) -> abci_pb.ResponseInitChain:
        genesis = GenesisAppState.from_json(orjson.loads(req.app_state_bytes or b"{}"))
        actual = self.backend.code_hash.hex()
        if genesis.code_hash != self.backend.code_hash:
            raise RuntimeError(
                f"this node's backend has code hash {actual} but the genesis names {genesis.code_hash.hex()}; "
                "start the node with the component the cluster was created for"
            )
        if genesis.settings.encode() != self._settings_json:
            raise RuntimeError("the genesis holds other cluster settings than this node loaded")
        if genesis.restored_from is not None:
            self._check_restored(genesis.restored_from)
        elif self.store.height is not None:
            raise RuntimeError("InitChain on a node that holds state already; a restored cluster's genesis says "
                               "`restored_from`")
        overlay = self.store.begin()
        if genesis.restored_from is not None:
            # The other cluster's identity (its settings, chain id, members) is replaced below;
            # its sessions, results and backend state go on.
            overlay.set(keys.RESTORED_FROM_KEY, canonical_json(genesis.restored_from.to_json()))
        overlay.set(keys.CODE_HASH_KEY, self.backend.code_hash)
        overlay.set(keys.SETTINGS_KEY, self._settings_json)
        overlay.set(keys.CHAIN_ID_KEY, req.chain_id.encode())
        validators = {update.pub_key.ed25519: update.power for update in req.validators}
        if any(not key for key in validators):
            raise RuntimeError("every genesis validator must have an ed25519 key")
        overlay.set(keys.MEMBERSHIP_KEY, canonical_json(Membership(validators=validators).to_json()))
        self.chain_id = req.chain_id
        self._genesis = overlay
        log.info("chain %s initialised for backend %s", req.chain_id, actual[:16])
        return abci_pb.ResponseInitChain(app_hash=overlay.root())

    def _check_restored(self, restored: RestoredFrom) -> None:
        """The state this node holds must be the convicted cluster's at its last valid checkpoint."""
        held = self.store.height or 0
        if held != restored.height or (held and self.store.root != restored.app_hash):
            raise RuntimeError(
                f"the genesis restores height {restored.height} of cluster {restored.cluster_id} (app_hash "
                f"{restored.app_hash.hex()[:16]}…), but this node holds height {held}"
                + (f" with app_hash {self.store.root.hex()[:16]}…" if held else "")
                + "; restore it with `rtc cluster restore`")

    # -- mempool ---------------------------------------------------------------------

    def check_tx(self, req: abci_pb.RequestCheckTx) -> abci_pb.ResponseCheckTx:
        """Refuse before ordering whatever would not run: bad bytes, signature, call, or session rule."""
        if is_sync(req.tx) or is_attestation_tx(req.tx):
            return abci_pb.ResponseCheckTx(
                code=Code.NOT_FROM_CLIENTS, codespace=CODESPACE,
                log="Ethereum-sync and attestation transactions are added by block proposers, not sent by clients")
        try:
            checked = self._prepare(req.tx)
            Sessions(self.store, self.settings.sessions).check(checked[0])
        except (TxError, Refused) as exc:
            return abci_pb.ResponseCheckTx(code=exc.code, log=str(exc), codespace=CODESPACE)
        self._checked.remember(checked[0].digest, checked, len(req.tx))  # only once admitted
        return abci_pb.ResponseCheckTx(code=Code.OK)

    def _prepare(self, tx: bytes) -> Checked:
        """Decode, verify and type-check a transaction: its envelope and (for a call) the call."""
        checked = self._checked.get(tx_digest(tx))
        if checked is not None:
            return checked
        if len(tx) > self.settings.max_tx_bytes:
            raise TxError(Code.MALFORMED, f"transaction of {len(tx)} bytes exceeds the limit of {self.settings.max_tx_bytes} bytes")
        try:
            envelope = decode(tx)
        except EnvelopeError as exc:
            raise TxError(Code.MALFORMED, str(exc)) from None
        try:
            envelope.verify(self.chain_id, self.settings.ethereum)
        except EnvelopeError as exc:
            raise TxError(Code.BAD_SIGNATURE, str(exc)) from None
        return envelope, (self._call_of(envelope) if envelope.kind is Kind.CALL else None)

    def _call_of(self, envelope: Envelope) -> PreparedCall:
        try:
            call = strict_json(envelope.call)
        except JSONInputError as exc:
            named = self.backend.argument_error(envelope.call)  # an integer beyond 64 bits, by its parameter
            if named is not None:
                raise TxError(Code.INVALID_CALL, named) from None
            raise TxError(Code.MALFORMED, f"the call: {exc}") from None
        try:
            prepared = self.backend.prepare(call)
        except CallError as exc:
            raise TxError(Code.INVALID_CALL, str(exc)) from None
        if prepared.entry.read_only:
            raise TxError(
                Code.READ_ONLY, f"'{call['function']}' is a read-only query; run it with `rtc query`, not as a transaction"
            )
        return prepared

    def prepare_proposal(self, req: abci_pb.RequestPrepareProposal) -> abci_pb.ResponsePrepareProposal:
        """Propose only well-formed, signed calls, up to the byte limit and about the block's fuel
        budget: invalid ones would only waste a block, and calls beyond the budget are refused.

        When this node sees a newer final Ethereum block with another membership (or the
        last sync is getting old), the block opens with an Ethereum-sync transaction; then
        come the attestations the last block's precommits carried.
        """
        sync = self._sync_to_propose()
        txs = [sync] if sync else []
        if self.attestations is not None:
            votes = ((vote.validator.address, vote.vote_extension) for vote in req.local_last_commit.votes)
            gathered = self.attestations.gather(req.height, votes, self._membership())
            if gathered is not None:
                txs.append(gathered)
        total = sum(len(tx) for tx in txs)
        fuel, unknown = 0, self.settings.limits.fuel  # an entry point not yet seen may take all its fuel
        for tx in req.txs:
            if total + len(tx) > req.max_tx_bytes or fuel >= self.settings.block_fuel:
                break
            if is_sync(tx) or is_attestation_tx(tx):
                continue
            try:
                _, call = self._prepare(tx)
            except TxError:
                continue
            if call is not None:
                fuel += self._fuel_seen.get(call.entry.name, unknown)
            total += len(tx)
            txs.append(tx)
        return abci_pb.ResponsePrepareProposal(txs=txs)

    def _membership(self, state: Any = None) -> Membership:
        """The membership in `state`; by default the committed one (InitChain's before the first block)."""
        if state is None:
            state = self._genesis if self._genesis is not None else self.store
        record = state.get(keys.MEMBERSHIP_KEY)
        return Membership.from_json(orjson.loads(record)) if record else Membership()

    def _sync_to_propose(self) -> bytes | None:
        """A final Ethereum block that adds at most one validator (`EthereumWatcher.proposal`)."""
        current = self._membership()
        seen = self.watcher.proposal(current) if self.watcher is not None else None
        if seen is None:
            return None
        if seen.block_number <= current.block_number:
            return None
        changed = (set(seen.members) != set(current.validators) or seen.attester_of != current.attesters
                   or current.block_number == 0)  # genesis: tie it to a block
        if not changed and seen.block_number < current.block_number + RESYNC_EVERY_ETH_BLOCKS:
            return None
        return seen.encode()

    def process_proposal(self, req: abci_pb.RequestProcessProposal) -> abci_pb.ResponseProcessProposal:
        """Accept only what an honest proposer sends: calls that decode, verify and type-check
        (rules of the bytes alone, so every honest node judges alike; session rules depend
        on the block's order and execute as refusals), and an Ethereum sync only if this
        node's own endpoint confirms it.

        The fuel budget is not judged here: fuel is known only by running the calls, so
        FinalizeBlock enforces it (`_deliver`), the same on every node whatever was proposed.
        """
        status = abci_pb.ResponseProcessProposal.ACCEPT
        for tx in req.txs:
            if is_sync(tx) or is_attestation_tx(tx):
                continue
            try:
                checked = self._prepare(tx)
                self._checked.remember(checked[0].digest, checked, len(tx))  # FinalizeBlock will meet it
            except TxError as exc:
                log.warning("refusing proposal at height %d: it holds a transaction no honest proposer sends (%s)",
                            req.height, exc)
                return abci_pb.ResponseProcessProposal(status=abci_pb.ResponseProcessProposal.REJECT)
        syncs = [i for i, tx in enumerate(req.txs) if is_sync(tx)]
        if syncs:
            try:
                if syncs != [0]:
                    raise SyncError("a block holds at most one Ethereum sync, as its first transaction")
                if self.settings.ethereum is None:
                    raise SyncError("this cluster follows no Ethereum contract")
                sync = decode_sync(req.txs[0])
                apply_sync(self._membership(), sync, req.height)
                if self.watcher is None:
                    raise Unconfirmed("this node has no Ethereum endpoint configured (eth_rpc in rtc.json)")
                self.watcher.confirm(sync)
            except (SyncError, Unconfirmed) as exc:
                log.warning("refusing proposal at height %d: %s", req.height, exc)
                status = abci_pb.ResponseProcessProposal.REJECT
        attestations = [i for i, tx in enumerate(req.txs) if is_attestation_tx(tx)]
        if attestations:
            try:
                if attestations != [len(syncs)]:
                    raise AttestationError("a block holds at most one attestation transaction, after the sync if any")
                if self.attestations is None:
                    raise AttestationError("this cluster names no Validation contract to attest to")
                self.attestations.check_tx(req.height, req.txs[attestations[0]], self._membership())
            except AttestationError as exc:
                log.warning("refusing proposal at height %d: its attestations: %s", req.height, exc)
                status = abci_pb.ResponseProcessProposal.REJECT
        return abci_pb.ResponseProcessProposal(status=status)

    # -- attestations, on the precommits -----------------------------------------------

    def extend_vote(self, req: abci_pb.RequestExtendVote) -> abci_pb.ResponseExtendVote:
        """This member's attestation of the state after height-2 (empty when it makes none)."""
        if self.attestations is None:
            return abci_pb.ResponseExtendVote()
        return abci_pb.ResponseExtendVote(vote_extension=self.attestations.extend(req.height, self._membership()))

    def verify_vote_extension(self, req: abci_pb.RequestVerifyVoteExtension) -> abci_pb.ResponseVerifyVoteExtension:
        """Refuse an attestation that is malformed, of another height or state, or not by the validator's attester."""
        if not req.vote_extension:
            return abci_pb.ResponseVerifyVoteExtension(status=abci_pb.ResponseVerifyVoteExtension.ACCEPT)
        try:
            if self.attestations is None:
                raise AttestationError("this cluster names no Validation contract to attest to")
            self.attestations.check_extension(req.height, req.validator_address, req.vote_extension,
                                              self._membership())
        except AttestationError as exc:
            log.warning("height %d: refusing validator %s's attestation: %s", req.height,
                        req.validator_address.hex()[:12], exc)
            return abci_pb.ResponseVerifyVoteExtension(status=abci_pb.ResponseVerifyVoteExtension.REJECT)
        return abci_pb.ResponseVerifyVoteExtension(status=abci_pb.ResponseVerifyVoteExtension.ACCEPT)

    # -- execution -------------------------------------------------------------------

    def finalize_block(self, req: abci_pb.RequestFinalizeBlock) -> abci_pb.ResponseFinalizeBlock:
        overlay = self._genesis if self._genesis is not None else self.store.begin()
        block = BlockInfo(height=req.height, time_ms=req.time.seconds * 1000 + req.time.nanos // 1_000_000)
        # Session ordering and execution, on this node's core (rtc.node.calls)
        calls = block_calls(self.backend, overlay, block, self.settings.sessions, self._call_for, TxError)
        updates: list[tuple[bytes, int]] = []
        results = []
        for tx in req.txs:
            if is_sync(tx):
                result, applied = self._apply_sync(tx, overlay, req.height)
                updates += applied
                results.append(result)
            elif is_attestation_tx(tx):
                results.append(_attestation_result(tx))
            else:
                results.append(self._deliver(tx, calls))
        events = [_result_event(key, counter, status) for key, counter, status in calls.end_block()]
        self._fuel_seen.update(calls.fuel_seen)
        app_hash = overlay.root()
        self._pending, self._pending_height = overlay, req.height
        self._pending_block = (list(req.txs), results, app_hash)
        return abci_pb.ResponseFinalizeBlock(
            tx_results=results, events=events, app_hash=app_hash,
            validator_updates=[abci_pb.ValidatorUpdate(pub_key=PublicKey(ed25519=key), power=power)
                               for key, power in updates],
        )

    def _apply_sync(self, tx: bytes, overlay: Any, height: int) -> tuple[abci_pb.ExecTxResult, list[tuple[bytes, int]]]:
        """The validator set becomes the members the decided sync names; takes effect at height+2."""
        try:
            if self.settings.ethereum is None:
                raise SyncError("this cluster follows no Ethereum contract; its validator set is fixed")
            sync = decode_sync(tx)
            membership, updates = apply_sync(self._membership(overlay), sync, height)
        except SyncError as exc:
            return abci_pb.ExecTxResult(code=Code.INVALID_SYNC, log=str(exc), codespace=CODESPACE), []
        overlay.set(keys.MEMBERSHIP_KEY, canonical_json(membership.to_json()))
        added = [key.hex() for key, power in updates if power]
        removed = [key.hex() for key, power in updates if not power]
        if updates:
            log.info("height %d: %s; validators added %s, removed %s", height, sync.describe(),
                     [k[:12] for k in added], [k[:12] for k in removed])
        event = abci_pb.Event(type="rtc_membership", attributes=[
            abci_pb.EventAttribute(key="ethereum_block", value=str(sync.block_number), index=True),
            abci_pb.EventAttribute(key="added", value=",".join(added)),
            abci_pb.EventAttribute(key="removed", value=",".join(removed)),
        ])
        return abci_pb.ExecTxResult(code=Code.OK, data=canonical_json(membership.to_json()), events=[event]), updates

    def _deliver(self, tx: bytes, calls: Any) -> abci_pb.ExecTxResult:
        budget = self.settings.block_fuel
        if calls.fuel_spent >= budget:
            # Fuel is deterministic, so every node stops at the same transaction. The check is
            # per transaction, so a block spends at most its budget plus one transaction's
            # calls: its own and the queued successors it releases (SessionRules.max_buffered).
            return abci_pb.ExecTxResult(
                code=Code.BLOCK_FULL, codespace=CODESPACE,
                log=f"the block's fuel budget of {budget} was spent before this call's turn; send it again")
        try:
            checked = self._prepare(tx)
            envelope = checked[0]
            self._checked.remember(envelope.digest, checked, len(tx))  # a queued call runs later
            written: list[Written] = calls.deliver(envelope)
        except (TxError, Refused) as exc:
            return abci_pb.ExecTxResult(code=exc.code, log=str(exc), codespace=CODESPACE)
        own = written[0]
        failed = own.status == "error"
        return abci_pb.ExecTxResult(
            code=Code.EXECUTION_FAILED if failed else Code.OK,
            data=own.encoded,
            log=(own.error or "") if failed else "",
            gas_used=own.fuel,
            codespace=CODESPACE if failed else "",
            events=[_result_event(envelope.session_key, row.counter, row.status) for row in written],
        )

    def _call_for(self, digest: str, raw: bytes) -> PreparedCall:
        """The call of an envelope whose turn has come: checked when it entered the mempool or
        the queue, taken from the cache, or checked again if the cache no longer holds it."""
        checked = self._checked.get(digest)
        return checked[1] if checked is not None and checked[1] is not None else self._call_of(decode(raw))

    def commit(self, req: abci_pb.RequestCommit) -> abci_pb.ResponseCommit:
        if self._pending is None:
            raise RuntimeError("Commit without a finalized block")
        self.store.commit(self._pending, self._pending_height)
        self._pending, self._genesis, self._awaiting_init = None, None, False
        if self.on_commit is not None:
            self.on_commit(self._pending_height, *self._pending_block)
        if self.snapshots is not None and self.snapshots.due(self._pending_height):
            self.snapshots.take(self.store)
        return abci_pb.ResponseCommit()

    # -- state sync: the snapshots that are in Swarm, served to and restored from peers --

    def list_snapshots(self, req: abci_pb.RequestListSnapshots) -> abci_pb.ResponseListSnapshots:
        return abci_pb.ResponseListSnapshots(snapshots=self.state_sync.list())

    def load_snapshot_chunk(self, req: abci_pb.RequestLoadSnapshotChunk) -> abci_pb.ResponseLoadSnapshotChunk:
        return abci_pb.ResponseLoadSnapshotChunk(chunk=self.state_sync.load(req.height, req.format, req.chunk))

    def offer_snapshot(self, req: abci_pb.RequestOfferSnapshot) -> abci_pb.ResponseOfferSnapshot:
        return abci_pb.ResponseOfferSnapshot(result=self.state_sync.offer(req.snapshot, req.app_hash, self.store))

    def apply_snapshot_chunk(self, req: abci_pb.RequestApplySnapshotChunk) -> abci_pb.ResponseApplySnapshotChunk:
        response = self.state_sync.apply(req.index, req.chunk, req.sender)
        if self.store.height is not None:  # the last part landed: this node now has the cluster's state
            self.chain_id = (self.store.get(keys.CHAIN_ID_KEY) or b"").decode()
            self._check_committed_identity()
        return response

    # -- reads -----------------------------------------------------------------------

    def query(self, req: abci_pb.RequestQuery) -> abci_pb.ResponseQuery:
        """The paths of `rtc.protocol.queries`: one proven state key, the entry points, or a read-only call."""
        height = self.store.height or 0
        try:  # a bad query is the asker's problem: answered with a code, never an exception
            key = queries.state_key(req.path)
            if key is not None:
                return self._query_key(key, req.prove)
            if req.path == queries.ENTRY_POINTS:
                listing = [entry.describe() for entry in self.backend.entry_points.values()]
                body = {"code_hash": self.backend.code_hash.hex(), "entry_points": listing}
                return abci_pb.ResponseQuery(code=Code.OK, value=canonical_json(body), height=height)
            if req.path == queries.CALL:
                return self._query_call(req.data)
        except ValueError as exc:
            return abci_pb.ResponseQuery(code=Code.MALFORMED, log=str(exc), height=height)
        return abci_pb.ResponseQuery(
            code=Code.MALFORMED, log=f"unknown query path {req.path!r}; see docs/protocol.md", height=height
        )

    def _query_key(self, key: bytes, prove: bool) -> abci_pb.ResponseQuery:
        value = self.store.get(key)
        response = abci_pb.ResponseQuery(code=Code.OK, key=key, value=value or b"", height=self.store.height or 0)
        if value is None:
            response.log = "not found"
        if prove:
            proof = self.store.prove(key)
            response.proof_ops.ops.append(ProofOp(type=queries.PROOF_OP_TYPE, key=key, data=proof.to_bytes()))
        return response

    def _query_call(self, data: bytes) -> abci_pb.ResponseQuery:
        height = self.store.height or 0
        try:
            call = strict_json(data)
            prepared = self.backend.prepare(call)
        except (JSONInputError, CallError) as exc:
            named = self.backend.argument_error(data) if isinstance(exc, JSONInputError) else None
            return abci_pb.ResponseQuery(code=Code.INVALID_CALL, log=named or str(exc), height=height)
        if not prepared.entry.read_only:
            return abci_pb.ResponseQuery(
                code=Code.INVALID_CALL, log=f"'{call['function']}' changes state; send it with `rtc call`", height=height
            )
        outcome = self.backend.execute(prepared, BackendState(self.store), BlockInfo(height, 0))
        if not outcome.ok:
            return abci_pb.ResponseQuery(code=Code.EXECUTION_FAILED, log=outcome.error or "", height=height)
        return abci_pb.ResponseQuery(code=Code.OK, value=canonical_json({"value": outcome.value, "fuel": outcome.fuel_used}), height=height)


def _attestation_result(tx: bytes) -> abci_pb.ExecTxResult:
    """An attestation transaction changes no state; its result (in last_results_hash) depends on its bytes alone."""
    try:
        batch = AttestationTx.decode(tx)
    except AttestationError as exc:
        return abci_pb.ExecTxResult(code=Code.MALFORMED, log=str(exc), codespace=CODESPACE)
    return abci_pb.ExecTxResult(code=Code.OK, events=[abci_pb.Event(type="rtc_attestation", attributes=[
        abci_pb.EventAttribute(key="height", value=str(batch.state.height), index=True),
        abci_pb.EventAttribute(key="signatures", value=str(len(batch.signatures))),
    ])])


def _result_event(session_key: bytes, counter: int, status: str) -> abci_pb.Event:
    """One event per result, so a client can subscribe to `rtc_result.key='<session hex>/<k>'`."""
    return abci_pb.Event(
        type="rtc_result",
        attributes=[
            abci_pb.EventAttribute(key="key", value=f"{session_key.hex()}/{counter}", index=True),
            abci_pb.EventAttribute(key="status", value=status, index=True),
        ],
    )

