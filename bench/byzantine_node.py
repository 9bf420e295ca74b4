"""A node's state machine that proposes what no honest node would, for `make chaos`.

It runs the real node (`rtc.node.runner.run_node`) with one method changed: its proposals
alternate between a block stuffed with valid calls far beyond the block's fuel budget
(the budget refuses the rest with BLOCK_FULL, on every node alike) and a block holding a
transaction that does not decode (every honest validator refuses the proposal, and the
round moves on to the next proposer). It votes and executes honestly.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from pathlib import Path

from nacl.signing import SigningKey

from rtc.abci import abci_pb
from rtc.node import runner
from rtc.node.app import ClusterApp
from rtc.protocol import SigningDomain, canonical_json, sign

log = logging.getLogger("rtc.byzantine")
STUFFED_CALLS = 300  # about five blocks' worth of the chaos run's budget


class ByzantineApp(ClusterApp):
    _proposals = itertools.count()
    _key = SigningKey.generate()

    def prepare_proposal(self, req: abci_pb.RequestPrepareProposal) -> abci_pb.ResponsePrepareProposal:
        honest = list(super().prepare_proposal(req).txs)
        if next(self._proposals) % 2 == 0:
            session = os.urandom(16)
            domain = SigningDomain.of(self.chain_id, self.settings.ethereum)
            stuffed = [sign(self._key, domain, session, k,
                            canonical_json({"function": "update_high", "symbol": "BYZ", "value": float(k)})).encode()
                       for k in range(STUFFED_CALLS)]
            log.warning("byzantine proposal at height %d: %d calls beyond the budget", req.height, len(stuffed))
            return abci_pb.ResponsePrepareProposal(txs=honest + stuffed)
        log.warning("byzantine proposal at height %d: a transaction that does not decode", req.height)
        return abci_pb.ResponsePrepareProposal(txs=honest + [b"RTC\x01" + os.urandom(300)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner.ClusterApp = ByzantineApp  # type: ignore[misc]  # build_app makes this class instead
    return runner.run_node(args.home)


if __name__ == "__main__":
    sys.exit(main())
