"""A member disputes its own cluster: when what the other members attest differs from the state
this node computed itself (docs/disputes.md).

A member that executes correctly among members that lie stops: CometBFT refuses the block
whose header carries the others' app_hash ("+2/3 committed an invalid block"), before any
vote extension attesting that app_hash reaches it. Their attestations reach it anyway, from
outside consensus: every checkpoint they post names a history record in Swarm, and the
record of block h+3 holds the attestation transaction of height h. So for every checkpoint
of its cluster this thread compares
  - the checkpoint's app_hash with its own root at that height, when it has one, and
  - when it has stopped below the checkpoint, the attestations in the records above its
    own last heights with its own roots there,
and disputes the first difference at once, with those signatures, claiming its own root. A
member posts no bond: a dispute it loses costs it part of its deposit instead. This thread
never touches consensus: it reads what the app committed, Ethereum and Swarm.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from rtc.ethereum.disputes import Disputes
from rtc.ethereum.registry import Registry
from rtc.ethereum.types import ContractRefused
from rtc.ethereum.validation import Validation
from rtc.history.reader import HistoryReader, Located
from rtc.membership import EthereumSettings
from rtc.protocol.attestation import Attestation, AttestationTx, is_attestation_tx
from rtc.swarm import Swarm, SwarmError

from .attesting import ATTESTED_LAG, AttestationRules

log = logging.getLogger("rtc.disputing")

# A member disputes the first height it disagrees with; it must look often: jurors that already
# replayed past that height for a validator's dispute of a later checkpoint cannot judge it.
POLL_SECONDS = 1.0
KEPT_ROOTS = 64  # own roots remembered (heights a stopped member can still compare)


class MemberDisputes:
    def __init__(self, url: str, settings: EthereumSettings, rules: AttestationRules, key: bytes, swarm: Swarm,
                 chain_id: str, poll_seconds: float = POLL_SECONDS) -> None:
        if settings.validation is None:
            raise ValueError("the cluster names no Validation contract")
        self.url = url
        self.settings = settings
        self.rules = rules
        self.key = key
        self.swarm = swarm
        self.chain_id = chain_id
        self.poll_seconds = poll_seconds
        self._roots: OrderedDict[int, bytes] = OrderedDict()  # own app_hash after each recent height
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read_up_to = 0  # Ethereum block up to which checkpoints were looked at
        self.opened: list[int] = []  # disputes this member opened

    def committed(self, height: int, txs: list[bytes], results: list[Any], app_hash: bytes) -> None:
        """The app's commit listener: remembers its own root."""
        with self._lock:
            self._roots[height] = app_hash
            while len(self._roots) > KEPT_ROOTS:
                self._roots.popitem(last=False)

    def start(self) -> "MemberDisputes":
        self._thread = threading.Thread(target=self._run, name="member-disputes", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        validation = Validation.connect(self.url, self.settings.validation or "")
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check_once(validation)
            except Exception as exc:  # noqa: BLE001 - Ethereum or Swarm down: looked at again next round
                log.debug("looking for divergent attestations: %s", exc)

    def check_once(self, validation: Validation) -> None:
        latest = int(validation.w3.eth.block_number)
        cluster = self.settings.cluster_id
        logs = validation.contract.events.CheckpointPosted.get_logs(
            from_block=self._read_up_to + 1 if self._read_up_to else max(0, latest - 10_000), to_block=latest,
            argument_filters={"cluster_id": cluster})
        self._read_up_to = latest
        with self._lock:
            roots = dict(self._roots)
        if not roots:
            return
        for event in logs:
            height, app_hash, record = int(event.args.height), bytes(event.args.app_hash), bytes(event.args.record)
            if height in roots:
                if roots[height] != app_hash:
                    state = Attestation(self.rules.registry, cluster, height, app_hash, record, self.rules.code_hash)
                    self._dispute(validation, state, validation.checkpoint_signatures(cluster, height), roots[height])
                    return
            elif height > max(roots):  # this node stopped below the checkpoint: read what the others attested
                found = self._divergence_below(record, roots)
                if found is not None:
                    batch, own = found
                    state = batch.state.attestation(self.rules.registry, cluster, self.rules.code_hash)
                    self._dispute(validation, state, list(batch.signatures), own)
                    return

    def _divergence_below(self, top: bytes, roots: dict[int, bytes]) -> tuple[AttestationTx, bytes] | None:
        """The first attestation, in the records from our last heights up to `top`, of a height we
        have a root for that differs from it (with our root)."""
        reader = HistoryReader(self.swarm, b"", self.chain_id)
        try:
            records = reader.walk_back(Located(top, reader.record(top)), min(roots) + ATTESTED_LAG + 1)  # block h+3 carries height h's
        except (SwarmError, ValueError) as exc:
            log.debug("the records before checkpoint %s… are not readable yet: %s", top.hex()[:16], exc)
            return None
        for located in records:
            for tx in located.record.txs[:2]:
                if not is_attestation_tx(tx):
                    continue
                batch = AttestationTx.decode(tx)
                own = roots.get(batch.state.height)
                if own is not None and own != batch.state.app_hash:
                    return batch, own
        return None

    def _dispute(self, validation: Validation, state: Attestation, signatures: list[bytes], own: bytes) -> None:
        disputes_address = validation.disputes()
        if disputes_address is None:
            log.error("the members attested app_hash %s… at height %d, this node computed %s…; no Disputes contract "
                      "is named to dispute it", state.app_hash.hex()[:16], state.height, own.hex()[:16])
            return
        disputes = Disputes.connect(self.url, disputes_address, private_key=self.key)
        sender = disputes.signer or ""
        node_id = Registry(validation.w3, validation.registry()).node_of_attester(sender)
        try:  # a member posts no bond
            opened = disputes.dispute_unless_disputed(sender, validation, state, signatures, own, node_id, 0)
        except ContractRefused as exc:
            log.error("height %d: the other members attested app_hash %s…, this node computed %s…; disputing it "
                      "was refused: %s", state.height, state.app_hash.hex()[:16], own.hex()[:16], exc)
            return
        if opened is None:
            return  # disputed already (by a validator, or an earlier round of this thread)
        dispute_id, posted = opened
        self.opened.append(dispute_id)
        log.error("height %d: %d members attested app_hash %s…, this node computed %s…: opened dispute %d "
                  "(Ethereum block %d, %d gas)", state.height, len(signatures), state.app_hash.hex()[:16],
                  own.hex()[:16], dispute_id, posted.block, posted.gas_used)

