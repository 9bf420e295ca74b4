"""The transactions this node already decoded, verified and type-checked, by digest.

CheckTx checks a signature and type-checks a call; PrepareProposal and FinalizeBlock
meet the same bytes again, and checking them once per node is a large part of a block's
cost. What the cache holds follows from the bytes alone, so it never changes a result.

It is bounded in bytes, not entries, and holds only what CheckTx admitted (or a decided
block carried): a transaction the mempool refuses costs its sender nothing, so keeping it
would let anyone fill this node's memory for free.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from rtc.protocol import Envelope

if TYPE_CHECKING:
    from rtc.vm import PreparedCall

Checked = tuple[Envelope, "PreparedCall | None"]

# What one entry costs beyond its transaction: the envelope, the decoded call and its
# lowered arguments (about the call's size again), and the dict slot.
ENTRY_OVERHEAD = 1024
DEFAULT_BUDGET = 64 * 1024 * 1024  # four full mempools of typical calls; a few hundred of the largest


class CheckedCache:
    """Least recently used transactions that passed every check, at most `budget` bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[Checked, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Checked | None:
        entry = self._entries.get(digest)
        return entry[0] if entry is not None else None

    def remember(self, digest: str, checked: Checked, size: int) -> None:
        if digest in self._entries:
            return
        cost = 2 * size + ENTRY_OVERHEAD
        self._entries[digest] = (checked, cost)
        self.bytes += cost
        while self.bytes > self.budget and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped
