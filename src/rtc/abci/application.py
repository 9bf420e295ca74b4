"""The ABCI application interface, with CometBFT-like defaults.

Subclass :class:`Application` and override what the state machine needs. Each
method receives the generated ``Request*`` message and must return the
matching ``Response*`` message. Methods are plain synchronous functions: the
server calls them one at a time on the event loop thread, in the order
CometBFT sent the requests on each connection, so the state machine never
sees concurrent calls (the same guarantee CometBFT's Go socket server gives
with its app mutex).

Raising from a method is the way to say "the state machine cannot go on": the
server answers with ``ResponseException``, CometBFT stops, and so does the node.
Echo and Flush never reach the application; the server answers them itself.
"""

from __future__ import annotations

from rtc.abci._pb.tendermint.abci import types_pb2 as pb

__all__ = ["Application", "CODE_OK", "CODE_NOT_SUPPORTED"]

#: Result code for success, as in CometBFT (any other code is an error).
CODE_OK = 0
#: Code we answer for requests the application does not implement.
CODE_NOT_SUPPORTED = 1


class Application:
    """Base ABCI 2.0 application (CometBFT v0.39). Override what you need."""

    # ---- info / query connection -------------------------------------------------

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        """Report the last committed height and app hash; zero means "replay from genesis"."""
        return pb.ResponseInfo()

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        return pb.ResponseQuery(code=CODE_OK)

    # ---- mempool connection ---------------------------------------------------------

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        """Accept every transaction into the mempool."""
        return pb.ResponseCheckTx(code=CODE_OK)

    def insert_tx(self, req: pb.RequestInsertTx) -> pb.ResponseInsertTx:
        """Only used with CometBFT's app-side mempool (``mempool.type = "app"``).

        The base class keeps no mempool, so it refuses the transaction rather
        than pretending to store it (CometBFT's BaseApplication answers OK and
        drops it).
        """
        return pb.ResponseInsertTx(code=CODE_NOT_SUPPORTED)

    def reap_txs(self, req: pb.RequestReapTxs) -> pb.ResponseReapTxs:
        """App-side mempool only: nothing is ever stored, so nothing is reaped."""
        return pb.ResponseReapTxs()

    # ---- consensus connection -------------------------------------------------------

    def init_chain(self, req: pb.RequestInitChain) -> pb.ResponseInitChain:
        """Keep the genesis validators and consensus params (empty response)."""
        return pb.ResponseInitChain()

    def prepare_proposal(self, req: pb.RequestPrepareProposal) -> pb.ResponsePrepareProposal:
        """Propose the mempool's transactions in order, up to ``max_tx_bytes``.

        Like CometBFT's BaseApplication, stops at the first transaction that
        would overflow the limit (a proposal over the limit is invalid).
        """
        limit = req.max_tx_bytes
        total = 0
        txs: list[bytes] = []
        for tx in req.txs:
            total += len(tx)
            if total > limit:
                break
            txs.append(tx)
        return pb.ResponsePrepareProposal(txs=txs)

    def process_proposal(self, req: pb.RequestProcessProposal) -> pb.ResponseProcessProposal:
        return pb.ResponseProcessProposal(status=pb.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: pb.RequestExtendVote) -> pb.ResponseExtendVote:
        return pb.ResponseExtendVote()

    def verify_vote_extension(self, req: pb.RequestVerifyVoteExtension) -> pb.ResponseVerifyVoteExtension:
        return pb.ResponseVerifyVoteExtension(status=pb.ResponseVerifyVoteExtension.ACCEPT)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        """Execute the decided block: one OK result per transaction (CometBFT requires one each)."""
        res = pb.ResponseFinalizeBlock()
        add = res.tx_results.add
        for _ in range(len(req.txs)):
            add(code=CODE_OK)
        return res

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        """Persist the state of the last FinalizeBlock; retain_height 0 keeps all blocks."""
        return pb.ResponseCommit()

    # ---- snapshot connection --------------------------------------------------------

    def list_snapshots(self, req: pb.RequestListSnapshots) -> pb.ResponseListSnapshots:
        return pb.ResponseListSnapshots()

    def offer_snapshot(self, req: pb.RequestOfferSnapshot) -> pb.ResponseOfferSnapshot:
        """No snapshot support: abort state sync instead of pretending to restore."""
        return pb.ResponseOfferSnapshot(result=pb.ResponseOfferSnapshot.ABORT)

    def load_snapshot_chunk(self, req: pb.RequestLoadSnapshotChunk) -> pb.ResponseLoadSnapshotChunk:
        return pb.ResponseLoadSnapshotChunk()

    def apply_snapshot_chunk(self, req: pb.RequestApplySnapshotChunk) -> pb.ResponseApplySnapshotChunk:
        return pb.ResponseApplySnapshotChunk(result=pb.ResponseApplySnapshotChunk.ABORT)
