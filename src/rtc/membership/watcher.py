"""This node's own view of Ethereum: what it proposes and what it checks others' proposals against.

A background thread polls the node's endpoint for the newest final block and the
cluster's member keys at it, so that PrepareProposal never waits on Ethereum. When the
endpoint is down or slow the thread keeps retrying and the cluster keeps running: this
node proposes no sync and refuses to vote for one it cannot check, and membership catches
up when the endpoint answers again.

A sync brings in at most one new validator (`rtc.membership.sync.apply_sync`). When the
newest final block has two or more new members (a burst of approvals), the thread looks
for an earlier final block at which only one of them had joined (`step_toward`, a
bisection over `member_keys_at`) and the proposer syncs to that one first; the next
sync takes the next member. The Registry admits at most one node per cluster per
Ethereum block, so such a block always exists.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from web3 import Web3

from rtc.ethereum.registry import load_artifact

from .sync import MAX_ADDED_PER_SYNC, EthereumSettings, EthereumSync, Membership, Unconfirmed, added_keys

log = logging.getLogger("rtc.membership")

POLL_SECONDS = 1.0
RPC_TIMEOUT_SECONDS = 2.0
REMEMBERED_BLOCKS = 256


class EthereumWatcher:
    def __init__(self, url: str, settings: EthereumSettings, poll_seconds: float = POLL_SECONDS) -> None:
        self.url = url
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._recent: OrderedDict[int, EthereumSync] = OrderedDict()
        self._latest: EthereumSync | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # the proposer wants a step found: poll now
        self._want: tuple[Hashable, Membership] | None = None  # the cluster's set a step is wanted for
        self._step: tuple[Hashable, int, EthereumSync | None] | None = None  # (set, final block searched, step)
        self._thread: threading.Thread | None = None
        self._down_since_logged = False
        self._abi = load_artifact()["abi"]

    # -- the endpoint ------------------------------------------------------------------

    def _connect(self) -> tuple[Web3, Any]:
        """One Web3 per thread: the poller and the ABCI thread never share a connection."""
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
        return w3, w3.eth.contract(address=Web3.to_checksum_address(self.settings.registry), abi=self._abi)

    def _final_number(self, w3: Web3) -> int:
        if self.settings.confirmations is None:
            return int(w3.eth.get_block("finalized")["number"])
        return int(w3.eth.block_number) - self.settings.confirmations

    def _observe(self, w3: Web3, registry: Any, number: int) -> EthereumSync:
        block_hash = bytes(w3.eth.get_block(number)["hash"])
        cluster = self.settings.cluster_id
        # Both read the membership history from the newest state (any endpoint answers for
        # old blocks, not only archive nodes) and list the same members in the same order.
        keys = registry.functions.member_keys_at(cluster, number).call()
        attesters = registry.functions.member_attesters_at(cluster, number).call()
        members = sorted(zip((bytes(key) for key in keys), (bytes.fromhex(a[2:]) for a in attesters)))
        return EthereumSync(number, block_hash, tuple(key for key, _ in members),
                            tuple(attester for _, attester in members))

    def _keys_at(self, registry: Any, number: int) -> tuple[bytes, ...]:
        # member_keys_at reads the membership history from storage, so any endpoint answers
        # it for old blocks, not only archive nodes.
        keys = registry.functions.member_keys_at(self.settings.cluster_id, number).call()
        return tuple(sorted(bytes(key) for key in keys))

    def _check_chain(self, w3: Web3) -> None:
        chain_id = int(w3.eth.chain_id)
        if chain_id != self.settings.chain_id:
            raise Unconfirmed(f"the endpoint {self.url} serves Ethereum chain {chain_id}, "
                              f"but the cluster follows chain {self.settings.chain_id}")

    # -- polling -----------------------------------------------------------------------

    def start(self) -> "EthereumWatcher":
        self._thread = threading.Thread(target=self._run, name="ethereum-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=RPC_TIMEOUT_SECONDS * 3)

    def _run(self) -> None:
        w3, registry = self._connect()
        checked_chain = False
        while not self._stop.is_set():
            try:
                if not checked_chain:
                    self._check_chain(w3)
                    checked_chain = True
                self.poll_once(w3, registry)
                if self._down_since_logged:
                    log.info("Ethereum endpoint %s answers again; membership syncs resume", self.url)
                    self._down_since_logged = False
            except Exception as exc:  # noqa: BLE001 - any endpoint failure only pauses syncing
                if not self._down_since_logged:
                    log.warning("Ethereum endpoint %s unavailable (%s); the cluster continues, "
                                "membership syncs resume when it answers", self.url, _short(exc))
                    self._down_since_logged = True
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def poll_once(self, w3: Web3 | None = None, registry: Any = None) -> EthereumSync | None:
        if w3 is None:
            w3, registry = self._connect()
        number = self._final_number(w3)
        if number < 1:
            return None
        observed = self._latest
        if observed is None or observed.block_number != number:
            observed = self._observe(w3, registry, number)
            self._remember(observed)
        self._find_step(w3, registry)
        return observed

    def _remember(self, observed: EthereumSync) -> None:
        with self._lock:
            self._recent[observed.block_number] = observed
            while len(self._recent) > REMEMBERED_BLOCKS:
                self._recent.popitem(last=False)
            if self._latest is None or observed.block_number > self._latest.block_number:
                self._latest = observed

    @property
    def latest(self) -> EthereumSync | None:
        """The newest final block seen; never blocks."""
        return self._latest

    # -- proposing: one new member per sync ---------------------------------------------

    def proposal(self, current: Membership) -> EthereumSync | None:
        """The final block to propose a sync for, given the cluster's committed membership; never blocks.

        The newest final block when it adds at most one validator; otherwise the earlier
        block with one new member that the polling thread found (None until it has: the
        thread is woken at once, and a later proposal carries it)."""
        latest = self._latest
        if latest is None or latest.block_number <= current.block_number:
            return None
        if not latest.members:
            # Every member left or was slashed out (a dispute convicted them): CometBFT cannot
            # run with no validators, so the last set stays. Its blocks are signed by nodes
            # without deposits, which every client's membership check refuses.
            return None
        if len(added_keys(current, latest)) <= MAX_ADDED_PER_SYNC:
            with self._lock:
                self._want = None  # nothing to search for
            return latest
        key = _membership_key(current)
        with self._lock:
            step = self._step
            if step is not None and step[0] == key and step[2] is not None:
                return step[2]
            self._want = (key, current)
        self._wake.set()
        return None

    def _find_step(self, w3: Web3, registry: Any) -> None:
        """Find the block `proposal` asked for, if it still wants one (runs in the polling thread)."""
        with self._lock:
            want, step, latest = self._want, self._step, self._latest
        if want is None or latest is None:
            return
        key, current = want
        if step is not None and step[0] == key and (step[2] is not None or step[1] >= latest.block_number):
            return  # found already, or none to find up to this final block
        if len(added_keys(current, latest)) <= MAX_ADDED_PER_SYNC:
            return  # the newest final block will do
        number = step_toward(current, latest.block_number, lambda n: self._keys_at(registry, n))
        found = self._observe(w3, registry, number) if number is not None else None
        if found is not None:
            self._remember(found)
            log.info("Ethereum block %d adds %d validators; proposing block %d first (one new validator per sync)",
                     latest.block_number, len(added_keys(current, latest)), found.block_number)
        else:
            log.warning("no Ethereum block after %d adds at most one validator to the current set; "
                        "the validator set cannot follow the contract until it does", current.block_number)
        with self._lock:
            self._step = (key, latest.block_number, found)

    # -- checking a proposal -------------------------------------------------------------

    def confirm(self, sync: EthereumSync) -> None:
        """Raise `Unconfirmed` unless this node's endpoint agrees: the block is final here,
        has this hash (no reorg), and the cluster had exactly these members at it."""
        with self._lock:
            known = self._recent.get(sync.block_number)
        if known is None:
            try:
                w3, registry = self._connect()
                self._check_chain(w3)
                final = self._final_number(w3)
                if sync.block_number > final:
                    raise Unconfirmed(f"Ethereum block {sync.block_number} is not final here yet (final: {final})")
                known = self._observe(w3, registry, sync.block_number)
            except Unconfirmed:
                raise
            except Exception as exc:  # noqa: BLE001
                raise Unconfirmed(f"cannot reach the Ethereum endpoint {self.url}: {_short(exc)}") from None
            self._remember(known)
        if known.block_hash != sync.block_hash:
            raise Unconfirmed(f"Ethereum block {sync.block_number} has hash {known.block_hash.hex()[:12]}… here, "
                              f"not {sync.block_hash.hex()[:12]}… (reorganized or forged)")
        if known.members != sync.members:
            raise Unconfirmed(f"the cluster had {len(known.members)} other members at Ethereum block "
                              f"{sync.block_number} than the {len(sync.members)} proposed")
        if known.attesters != sync.attesters:
            raise Unconfirmed(f"the cluster's members had other attesters at Ethereum block {sync.block_number} "
                              "than proposed")


def step_toward(current: Membership, final: int, keys_at: Callable[[int], tuple[bytes, ...]]) -> int | None:
    """An Ethereum block in (current.block_number, final) whose members add at most one
    validator to the current set, by bisection; None if there is none to find.

    Assumes the members at `current.block_number` add none (they are the current set) and
    those at `final` add more than one. At most one node joins a cluster per Ethereum block
    (the Registry's rule), so the number of new members grows by at most one from a block
    to the next: the block found is one where exactly one had joined, and syncing to it
    always makes progress."""
    low, high = current.block_number, final
    while high - low > 1:
        middle = (low + high) // 2
        if len(set(keys_at(middle)) - current.validators.keys()) <= MAX_ADDED_PER_SYNC:
            low = middle
        else:
            high = middle
    return low if low > current.block_number else None


def _membership_key(current: Membership) -> Hashable:
    return current.block_number, frozenset(current.validators.items())


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
