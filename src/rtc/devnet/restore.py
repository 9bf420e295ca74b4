"""`rtc cluster restore`: new members take over a convicted cluster's service from its last valid
checkpoint, restored from Swarm alone (docs/disputes.md).

The state comes from nowhere but Swarm: the convicted cluster's records, from its genesis up
to the checkpoint the freeze left valid, replayed with the Registry's code (a batch
validator's replica: every record's contents, links and commit signatures checked, every
block's app_hash compared, the last with the checkpoint's, which Ethereum says was
validated). The new members register in the same Registry as a new cluster for the same
code; their genesis names where its state comes from (`restored_from`) and starts at the
height after the checkpoint, so every session's counters and results up to it go on, and
nothing the convicted members did above it exists there.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from rtc.history.config import open_swarm
from rtc.node.config import RestoredFrom
from rtc.validator import CannotJudge, ClusterSource, Replica

from .devnet import Devnet
from .manifest import DevnetError, EthereumInfo


@dataclass(frozen=True)
class Restoration:
    ethereum: EthereumInfo  # the convicted cluster's contracts (the successor joins them)
    restored_from: RestoredFrom
    state: Path | None  # its state at the checkpoint (None: the checkpoint is its genesis)


def restore_cluster(old_home: Path, home: Path, nodes: int = 4, base_port: int = 26900,
                    progress: Callable[[str], None] = lambda _: None) -> Devnet:
    """Start `nodes` new members at `home` from the last valid checkpoint of the frozen cluster of
    the devnet at `old_home`."""
    old = Devnet.load(old_home)
    eth = old.ethereum
    if eth is None or not eth.validation:
        raise DevnetError(f"the devnet in {old_home} has no Validation contract: nothing was validated to restore")
    validation = Validation.connect(eth.url, eth.validation)
    height = validation.frozen_at(eth.cluster_id)
    if height is None:
        raise DevnetError(f"cluster {eth.cluster_id} is not frozen: only a cluster whose agreed state a dispute ruled "
                          "invalid is restored (`rtc dispute list --home` shows the rulings)")
    registry = Registry.connect(eth.url, eth.registry)
    code_reference, code_hash = registry.code_of(eth.cluster_id)
    app_hash, record, state = b"", b"", None
    if height:
        checkpoint = validation.checkpoint(eth.cluster_id, height)
        assert checkpoint is not None  # a freeze height is a validated checkpoint or 0
        app_hash, record = checkpoint.app_hash, checkpoint.record
        state = _replay_from_swarm(old, home, height, code_reference, code_hash, app_hash, record,
                                   validation.validator_rules(eth.cluster_id)[2], progress)
    else:
        progress(f"cluster {eth.cluster_id} was frozen at its genesis: the successor starts from an empty state")
    restored = RestoredFrom(eth.registry, eth.cluster_id, height, app_hash, record)
    devnet = Devnet.create(home, nodes, old.home / "app.wasm", base_port=base_port, progress=progress,
                           swarm=old.swarm.store, swarm_batch=old.swarm.batch,
                           restoration=Restoration(eth, restored, state))
    if state is not None:
        shutil.rmtree(state.parent, ignore_errors=True)
    return devnet


def _replay_from_swarm(old: Devnet, home: Path, height: int, code_reference: bytes, code_hash: bytes,
                       app_hash: bytes, record: bytes, genesis_reference: bytes,
                       progress: Callable[[str], None]) -> Path:
    progress(f"rebuilding cluster {old.ethereum.cluster_id}'s state at its last valid checkpoint {height} from Swarm "
             "alone: every record checked and replayed with the Registry's code")
    folder = home.parent / f".{home.name}-restoring"
    shutil.rmtree(folder, ignore_errors=True)
    swarm = open_swarm(old.swarm.store, old.swarm.batch)
    try:
        source = ClusterSource(old.ethereum.cluster_id, code_reference, code_hash, genesis_reference)
        judgement = Replica(folder, swarm, source).judge(height, record, app_hash, height)
    except CannotJudge as exc:
        raise DevnetError(f"cannot rebuild the state at checkpoint {height} from Swarm: {exc}") from None
    finally:
        swarm.close()
    if not judgement.agrees:
        raise DevnetError(f"the history in Swarm does not replay to the validated checkpoint {height}: "
                          f"{judgement.detail}")
    progress(f"replayed {judgement.replayed} blocks; state at {height} is app_hash {judgement.app_hash.hex()[:16]}…, "
             "the validated checkpoint's")
    return folder / "state"
