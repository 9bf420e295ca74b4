"""The replicated state machine: CometBFT's ABCI calls, answered with the backend and the store.

Read it top to bottom in the order CometBFT calls it: Info and InitChain when it
connects, CheckTx for every incoming transaction, FinalizeBlock to execute a decided
block, Commit to make it durable, Query to read committed state.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from rtc.abci import Application, abci_pb
from rtc.abci._pb.tendermint.crypto import proof_pb2 as crypto_pb
from rtc.state import StateStore
from rtc.vm import Backend, BlockInfo, CallError

from .config import ClusterSettings
from .keys import BACKEND_PREFIX, CODE_HASH_KEY, SETTINGS_KEY, backend_key, result_key
from .txs import Code, TxError, canonical_json, decode_tx, tx_hash

log = logging.getLogger("rtc.node")

APP_VERSION = 1
PROOF_OP_TYPE = "rtc:smt"


class BackendState:
    """The backend's view of a block overlay: its keys live under their own prefix."""

    __slots__ = ("overlay",)

    def __init__(self, overlay: Any) -> None:
        self.overlay = overlay

    def get(self, key: bytes) -> bytes | None:
        return self.overlay.get(BACKEND_PREFIX + key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        prefix = BACKEND_PREFIX
        upper = prefix + end if end is not None else _prefix_end(prefix)
        cut = len(prefix)
        return [(key[cut:], value) for key, value in self.overlay.scan(prefix + start, upper, limit)]


def _prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


class ClusterApp(Application):
    """One node's state machine. Every method is deterministic given the same blocks."""

    def __init__(self, store: StateStore, backend: Backend, settings: ClusterSettings) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self._settings_json = canonical_json(settings.to_json())
        if store.height:
            self._check_committed_identity()
        self._pending: Any = None  # the overlay of the block finalized but not yet committed
        self._pending_height = 0
        self._genesis: Any = None  # InitChain's writes, committed with the first block

    # -- connection and genesis ------------------------------------------------------

    def _check_committed_identity(self) -> None:
        """Refuse to continue a chain with different code or settings than it was built with."""
        stored_code = self.store.get(CODE_HASH_KEY)
        if stored_code != self.backend.code_hash:
            raise RuntimeError(
                f"the state was built by backend {stored_code.hex() if stored_code else None}, "
                f"but this node loaded {self.backend.code_hash.hex()}; start it with the cluster's component"
            )
        if self.store.get(SETTINGS_KEY) != self._settings_json:
            raise RuntimeError("the state was built with other cluster settings than this node's genesis holds")

    def info(self, req: abci_pb.RequestInfo) -> abci_pb.ResponseInfo:
        return abci_pb.ResponseInfo(
            data="rtc",
            version="0.1.0",
            app_version=APP_VERSION,
            last_block_height=self.store.height or 0,
            last_block_app_hash=self.store.root if self.store.height else b"",
        )

    def init_chain(self, req: abci_pb.RequestInitChain) -> abci_pb.ResponseInitChain:
        genesis = orjson.loads(req.app_state_bytes or b"{}")
        expected = genesis.get("code_hash")
        actual = self.backend.code_hash.hex()
        if expected != actual:
            raise RuntimeError(
                f"this node's backend has code hash {actual} but the genesis names {expected}; "
                "start the node with the component the cluster was created for"
            )
        if canonical_json(ClusterSettings.from_json(genesis.get("settings", {})).to_json()) != self._settings_json:
            raise RuntimeError("the genesis holds other cluster settings than this node loaded")
        overlay = self.store.begin()
        overlay.set(CODE_HASH_KEY, self.backend.code_hash)
        overlay.set(SETTINGS_KEY, self._settings_json)
        self._genesis = overlay
        log.info("chain %s initialised for backend %s", req.chain_id, actual[:16])
        return abci_pb.ResponseInitChain(app_hash=overlay.root())

    # -- mempool ---------------------------------------------------------------------

    def check_tx(self, req: abci_pb.RequestCheckTx) -> abci_pb.ResponseCheckTx:
        if req.type == abci_pb.RECHECK:
            return abci_pb.ResponseCheckTx(code=Code.OK)  # validity does not depend on state
        try:
            self._prepare(req.tx)
        except TxError as exc:
            return abci_pb.ResponseCheckTx(code=exc.code, log=str(exc), codespace="rtc")
        return abci_pb.ResponseCheckTx(code=Code.OK)

    def _prepare(self, tx: bytes) -> Any:
        envelope = decode_tx(tx, self.settings.max_tx_bytes)
        try:
            prepared = self.backend.prepare(envelope.call)
        except CallError as exc:
            raise TxError(Code.INVALID_CALL, str(exc)) from None
        if prepared.entry.read_only:
            raise TxError(
                Code.READ_ONLY, f"'{envelope.call['function']}' is a read-only query; run it with `rtc query`, not as a transaction"
            )
        return prepared

    def prepare_proposal(self, req: abci_pb.RequestPrepareProposal) -> abci_pb.ResponsePrepareProposal:
        """Propose only well-formed calls, up to the byte limit: invalid ones would only waste a block."""
        txs, total = [], 0
        for tx in req.txs:
            total += len(tx)
            if total > req.max_tx_bytes:
                break
            try:
                self._prepare(tx)
            except TxError:
                total -= len(tx)
                continue
            txs.append(tx)
        return abci_pb.ResponsePrepareProposal(txs=txs)

    def process_proposal(self, req: abci_pb.RequestProcessProposal) -> abci_pb.ResponseProcessProposal:
        # Invalid transactions are executed as deterministic failures, so any block is acceptable.
        return abci_pb.ResponseProcessProposal(status=abci_pb.ResponseProcessProposal.ACCEPT)

    # -- execution -------------------------------------------------------------------

    def finalize_block(self, req: abci_pb.RequestFinalizeBlock) -> abci_pb.ResponseFinalizeBlock:
        overlay = self._genesis if self._genesis is not None else self.store.begin()
        block = BlockInfo(height=req.height, time_ms=req.time.seconds * 1000 + req.time.nanos // 1_000_000)
        results = [self._execute(tx, overlay, block) for tx in req.txs]
        self._pending, self._pending_height = overlay, req.height
        return abci_pb.ResponseFinalizeBlock(tx_results=results, app_hash=overlay.root())

    def _execute(self, tx: bytes, overlay: Any, block: BlockInfo) -> abci_pb.ExecTxResult:
        digest = tx_hash(tx)
        try:
            prepared = self._prepare(tx)
        except TxError as exc:
            record = {"status": "invalid", "error": str(exc)}
            overlay.set(result_key(digest), canonical_json(record))
            return abci_pb.ExecTxResult(code=exc.code, log=str(exc), codespace="rtc", data=canonical_json(record))
        outcome = self.backend.execute(prepared, BackendState(overlay), block)
        function = prepared.entry.name
        error = outcome.error
        if outcome.ok:
            record = {"status": "ok", "value": outcome.value, "fuel": outcome.fuel_used}
            encoded = canonical_json(record)
            limit = self.backend.limits.max_result_bytes
            if len(encoded) > limit:
                error = f"result of {len(encoded)} bytes exceeds the limit of {limit} bytes"
            else:
                for key, value in outcome.writes.items():
                    if value is None:
                        overlay.delete(backend_key(key))
                    else:
                        overlay.set(backend_key(key), value)
        if error is not None:
            record = {"status": "error", "error": error, "fuel": outcome.fuel_used}
            encoded = canonical_json(record)
        overlay.set(result_key(digest), encoded)
        status = record["status"]
        return abci_pb.ExecTxResult(
            code=Code.OK if error is None else Code.EXECUTION_FAILED,
            data=encoded,
            log="" if error is None else f"{function}: {error}",
            gas_used=outcome.fuel_used,
            codespace="" if error is None else "rtc",
            events=[
                abci_pb.Event(
                    type="rtc",
                    attributes=[
                        abci_pb.EventAttribute(key="function", value=function.replace("-", "_"), index=True),
                        abci_pb.EventAttribute(key="status", value=status, index=True),
                    ],
                )
            ],
        )

    def commit(self, req: abci_pb.RequestCommit) -> abci_pb.ResponseCommit:
        if self._pending is None:
            raise RuntimeError("Commit without a finalized block")
        self.store.commit(self._pending, self._pending_height)
        self._pending, self._genesis = None, None
        return abci_pb.ResponseCommit()

    # -- reads -----------------------------------------------------------------------

    def query(self, req: abci_pb.RequestQuery) -> abci_pb.ResponseQuery:
        """Paths: /result/<tx-hash-hex>, /state/<key-hex>, /entry-points, /call (JSON read-only call)."""
        height = self.store.height or 0
        try:
            if req.path.startswith("/result/"):
                return self._query_key(result_key(bytes.fromhex(req.path[len("/result/"):])), req.prove)
            if req.path.startswith("/state/"):
                return self._query_key(backend_key(bytes.fromhex(req.path[len("/state/"):])), req.prove)
            if req.path == "/entry-points":
                listing = [entry.describe() for entry in self.backend.entry_points.values()]
                body = {"code_hash": self.backend.code_hash.hex(), "entry_points": listing}
                return abci_pb.ResponseQuery(code=Code.OK, value=canonical_json(body), height=height)
            if req.path == "/call":
                return self._query_call(req.data)
        except ValueError as exc:
            return abci_pb.ResponseQuery(code=Code.MALFORMED, log=str(exc), height=height)
        return abci_pb.ResponseQuery(
            code=Code.MALFORMED, log=f"unknown query path {req.path!r}; see docs/architecture.md", height=height
        )

    def _query_key(self, key: bytes, prove: bool) -> abci_pb.ResponseQuery:
        value = self.store.get(key)
        response = abci_pb.ResponseQuery(code=Code.OK, key=key, value=value or b"", height=self.store.height or 0)
        if value is None:
            response.log = "not found"
        if prove:
            proof = self.store.prove(key)
            response.proof_ops.ops.append(crypto_pb.ProofOp(type=PROOF_OP_TYPE, key=key, data=proof.to_bytes()))
        return response

    def _query_call(self, data: bytes) -> abci_pb.ResponseQuery:
        height = self.store.height or 0
        try:
            call = orjson.loads(data)
            prepared = self.backend.prepare(call)
        except (orjson.JSONDecodeError, CallError) as exc:
            return abci_pb.ResponseQuery(code=Code.INVALID_CALL, log=str(exc), height=height)
        if not prepared.entry.read_only:
            return abci_pb.ResponseQuery(
                code=Code.INVALID_CALL, log=f"'{call['function']}' changes state; send it with `rtc call`", height=height
            )
        outcome = self.backend.execute(prepared, BackendState(self.store), BlockInfo(height, 0))
        if not outcome.ok:
            return abci_pb.ResponseQuery(code=Code.EXECUTION_FAILED, log=outcome.error or "", height=height)
        return abci_pb.ResponseQuery(code=Code.OK, value=canonical_json({"value": outcome.value, "fuel": outcome.fuel_used}), height=height)
