"""The nodes a client may use, and which one it uses now.

A cluster keeps running while any one node is down, so a client that knows several of its
nodes keeps running too: it uses one node at a time and moves to the next when that one
refuses connections, stops answering, or says it is catching up (a node that restarted
answers from stale state until it has replayed the blocks it missed). Moving is cheap; a
node that failed is left alone for a while before it is tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rtc.cometbft import AsyncRPC, RPCError, RPCUnavailable

log = logging.getLogger("rtc.client")

PROBE_TIMEOUT_S = 2.0  # a status answer takes milliseconds; a node slower than this is not one to use
BACKOFF_S = 3.0  # a node that failed is not tried again for this long (unless no other is left)


@dataclass(eq=False)
class Node:
    """One node's endpoint as the client sees it."""

    url: str
    rpc: AsyncRPC
    probe_rpc: AsyncRPC = field(repr=False)
    down_until: float = 0.0  # loop time until which it is not tried, unless no other node is left
    why_down: str = ""
    checked: bool = False  # probed healthy since it was last marked down

    @property
    def ws_url(self) -> str:
        return self.rpc.ws_url


class NodePool:
    """Which node to use now: the current one while it works, else the next healthy one.

    `on_down(node)` runs whenever a node is found unusable, so that whatever was sent to it
    and not yet seen in a block can be sent again elsewhere."""

    def __init__(self, urls: Sequence[str], timeout: float, probe_timeout: float = PROBE_TIMEOUT_S,
                 backoff: float = BACKOFF_S) -> None:
        unique = list(dict.fromkeys(url.rstrip("/") for url in urls))
        if not unique:
            raise ValueError("give at least one node URL, e.g. http://127.0.0.1:26601")
        self.nodes = [Node(url, AsyncRPC(url, timeout), AsyncRPC(url, probe_timeout)) for url in unique]
        self.current = self.nodes[0]
        self.backoff = backoff
        self.chain_id: str | None = None  # as the first healthy node reported it; every other must agree
        self.on_down: Callable[[Node], None] = lambda node: None
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self.nodes)

    async def aclose(self) -> None:
        for node in self.nodes:
            await node.rpc.aclose()
            await node.probe_rpc.aclose()

    def mark_down(self, node: Node, why: str, for_s: float | None = None) -> None:
        """Leave `node` alone for a while; whatever it was handed is resent elsewhere."""
        now = asyncio.get_running_loop().time()
        first = node.down_until <= now
        node.down_until = now + (self.backoff if for_s is None else for_s)
        node.why_down, node.checked = why, False
        if first and len(self.nodes) > 1:
            log.info("node %s is not usable (%s); failing over", node.url, why)
        self.on_down(node)

    async def healthy(self, avoid: Node | None = None) -> Node:
        """The current node if it is usable (and is not `avoid`), else the first healthy one after it.

        Raises RPCUnavailable when no node is usable, naming why each is not."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self.current is not avoid and self.current.checked and self.current.down_until <= now:
                return self.current
            start = self.nodes.index(self.current)
            ordered = self.nodes[start:] + self.nodes[:start]
            if avoid is not None and len(ordered) > 1:
                ordered = [n for n in ordered if n is not avoid] + [avoid]
            # Nodes in their backoff last, soonest back first: with every node failing, still try them all.
            ordered.sort(key=lambda n: 0.0 if n.down_until <= now else n.down_until)
            for node in ordered:
                why = node.why_down if node.checked and node.down_until <= now else await self._probe(node)
                if why is None:
                    node.checked, node.down_until = True, 0.0
                    if self.current is not node and len(self.nodes) > 1:
                        log.info("using node %s", node.url)
                    self.current = node
                    return node
                self.mark_down(node, why)
            raise RPCUnavailable("no node of the cluster is usable: "
                                 + "; ".join(f"{n.url} ({n.why_down})" for n in self.nodes), "status")

    async def _probe(self, node: Node) -> str | None:
        """None if the node answers, is not catching up and runs the client's chain; else why not."""
        try:
            status = await node.probe_rpc.status()
            catching_up = bool(status["sync_info"]["catching_up"])
            chain_id = str(status["node_info"]["network"])
        except RPCUnavailable as exc:
            return str(exc)
        except (RPCError, KeyError, TypeError) as exc:
            return f"its status answer is unusable: {exc}"
        if self.chain_id is None:
            self.chain_id = chain_id
        elif chain_id != self.chain_id:
            return f"it runs chain {chain_id!r}, not {self.chain_id!r}: it is not a node of this cluster"
        if catching_up:
            return "it is catching up with the cluster (its state is behind)"
        return None
