"""`make chaos`: a steady load of session calls on a 4-node devnet while faults are injected.

The load is what a user's client does: sessions of ordered calls through the SDK, which
knows every node and fails over between them. While it runs, faults come in a loop until
the time bound (10 minutes by default, everything included):

  kill_app           kill -9 of a random node's state machine, then both processes restart
  kill_cometbft      kill -9 of a random node's CometBFT process, then both restart
  long_stop          a node stopped longer than a mempool keeps what was sent to it (20 s)
  restore            a node wiped and restored from Swarm (snapshot + replayed records)
  byzantine          a node proposes over-budget blocks and blocks with transactions no
                     honest proposer sends (bench/byzantine_node.py)
  refused_flood      thousands of calls every node refuses: bad signatures, counters far
                     ahead with 60 KB payloads, garbage
  queries            read-only calls and proven reads, as fast as one client sends them

At the end it checks what must hold: no call the client was told committed is missing
from state (lost), no height at which two nodes hold different app_hashes (divergence),
no session failed by a fault; and it reports the longest stall, each restart's catch-up
time and every process's memory high-water mark. bench/results/chaos.json has it all;
the README shows a summary.
"""

from __future__ import annotations

import argparse
import base64
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from rtc.client import AsyncClient, CallRejected, TrustPolicy  # noqa: E402
from rtc.cometbft import RPCError  # noqa: E402
from rtc.devnet import Devnet  # noqa: E402
from rtc.node.config import ClusterSettings  # noqa: E402
from rtc.protocol import Code, ResultRecord, SessionRecord, SessionStatus, Status, queries  # noqa: E402
from rtc.vm import Limits  # noqa: E402

WASM = ROOT / "build" / "wasm"
WORK = ROOT / "build" / "chaos"
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
RTC = str(Path(sys.executable).parent / "rtc")

# A budget of about 60 `update_high` calls a block (7,881 fuel each), so a Byzantine proposer's
# stuffed blocks cross it and honest proposers must stop at it.
SETTINGS = ClusterSettings(Limits(fuel=500_000), block_fuel=500_000)
FAULT_KINDS = ("kill_app", "kill_cometbft", "long_stop", "restore", "byzantine", "refused_flood", "queries")
LONG_STOP_S = 20
BYZANTINE_S = 20


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


# -- watching the cluster ------------------------------------------------------------


@dataclass
class Watch:
    """Heights and memory, sampled from outside the processes (a thread)."""

    stall_s: float = 0.0  # the longest time no node's height moved
    stall_at_height: int = 0
    head: int = 0
    memory_mb: dict[str, float] = field(default_factory=dict)  # process name -> RSS high-water


class Watcher(threading.Thread):
    def __init__(self, devnet: Devnet, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.devnet, self.period = devnet, period
        self.watch = Watch()
        self._stop_event = threading.Event()

    def run(self) -> None:
        moved = time.monotonic()
        with httpx.Client(timeout=0.5) as http:
            while not self._stop_event.wait(self.period):
                now = time.monotonic()
                for node in list(self.devnet.nodes):
                    try:
                        height = int(http.get(f"{node.rpc}/status").json()["result"]["sync_info"]["latest_block_height"])
                    except (httpx.HTTPError, KeyError, ValueError):
                        continue
                    if height > self.watch.head:
                        self.watch.head, moved = height, now
                    self._sample_memory(node.name, node.app_pid, node.cometbft_pid)
                if now - moved > self.watch.stall_s:
                    self.watch.stall_s, self.watch.stall_at_height = now - moved, self.watch.head

    def _sample_memory(self, name: str, app_pid: int, cometbft_pid: int) -> None:
        for role, pid in (("app", app_pid), ("cometbft", cometbft_pid)):
            rss = _rss_mb(pid)
            key = f"{name}-{role}"
            if rss is not None and rss > self.watch.memory_mb.get(key, 0.0):
                self.watch.memory_mb[key] = rss

    def stop(self) -> Watch:
        self._stop_event.set()
        self.join()
        return self.watch


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # the kernel's own high-water mark, so no peak is missed
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


# -- the load ------------------------------------------------------------------------


@dataclass
class Sent:
    session: bytes
    counter: int
    tx: str


@dataclass
class LoadFigures:
    sent: int = 0
    committed: int = 0
    failed: int = 0  # the call ran and failed (must be 0: update_high does not fail)
    refused: Counter[str] = field(default_factory=Counter)  # by code name
    unanswered: int = 0  # no final answer within the client's deadline
    latencies_ms: list[float] = field(default_factory=list)


class Load:
    """`sessions` sessions, each sending `rate` calls a second without waiting for the last."""

    def __init__(self, client: AsyncClient, sessions: int, rate: float) -> None:
        self.client = client
        self.sessions = [client.session(SigningKey.generate()) for _ in range(sessions)]
        self.rate = rate
        self.figures = LoadFigures()
        self.committed: list[Sent] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._running = True

    async def run(self) -> None:
        await asyncio.gather(*(self._drive(i, s) for i, s in enumerate(self.sessions)))
        if self._pending:
            await asyncio.gather(*self._pending)

    def stop(self) -> None:
        self._running = False

    async def _drive(self, index: int, session: Any) -> None:
        period = 1.0 / self.rate
        await asyncio.sleep(random.random() * period)
        n = 0
        while self._running:
            call = {"function": "update_high", "symbol": f"S{index}", "value": float(n)}
            task = asyncio.create_task(self._one(session, call))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            n += 1
            await asyncio.sleep(period)

    async def _one(self, session: Any, call: dict[str, Any]) -> None:
        self.figures.sent += 1
        started = time.monotonic()
        try:
            result = await session.call_and_wait(call, timeout=60.0)
        except CallRejected as exc:
            self.figures.refused[_code_name(exc.code)] += 1
            return
        except (TimeoutError, asyncio.TimeoutError, RPCError):  # no final answer within the deadline
            self.figures.unanswered += 1
            return
        if result.record.status is Status.OK:
            self.figures.committed += 1
            self.figures.latencies_ms.append((time.monotonic() - started) * 1000)
            self.committed.append(Sent(session.session_key, result.counter, result.record.tx or ""))
        else:
            self.figures.failed += 1


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return str(code)


# -- the faults ----------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    node: str | None
    at_s: float  # since the load started
    took_s: float = 0.0
    catch_up_s: float | None = None  # restart to the cluster's head
    note: str = ""


class Faults:
    def __init__(self, devnet: Devnet, started: float, seed: int) -> None:
        self.devnet = devnet
        self.started = started
        self.random = random.Random(seed)
        self.done: list[Fault] = []
        self.refusals: Counter[str] = Counter()

    def inject(self, kind: str) -> Fault:
        index = self.random.randrange(len(self.devnet.nodes))
        fault = Fault(kind, None if kind in ("refused_flood", "queries") else self.devnet.nodes[index].name,
                      round(time.monotonic() - self.started, 1))
        began = time.monotonic()
        getattr(self, kind)(index, fault)
        fault.took_s = round(time.monotonic() - began, 1)
        self.done.append(fault)
        return fault

    def kill_app(self, index: int, fault: Fault) -> None:
        os.kill(self.devnet.nodes[index].app_pid, signal.SIGKILL)
        self._restart(index, fault, pause=1.0)

    def kill_cometbft(self, index: int, fault: Fault) -> None:
        os.kill(self.devnet.nodes[index].cometbft_pid, signal.SIGKILL)
        self._restart(index, fault, pause=1.0)

    def long_stop(self, index: int, fault: Fault) -> None:
        self._restart(index, fault, pause=LONG_STOP_S)

    def restore(self, index: int, fault: Fault) -> None:
        self.devnet.stop_node(index)
        home = Path(self.devnet.nodes[index].home)
        shutil.rmtree(home / "rtc-state")
        for entry in (home / "data").iterdir():  # CometBFT's blocks and state too; its signing state stays
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.name != "priv_validator_state.json":
                entry.unlink()
        restored = subprocess.run(
            [RTC, "node", "restore", "--from-swarm", "--home", str(self.devnet.home), "--node", str(index),
             "--anchor-genesis", "--json"], capture_output=True, text=True, timeout=300)
        if restored.returncode != 0:
            fault.note = f"restore failed: {(restored.stderr or restored.stdout).strip()[-300:]}"
        else:
            fault.note = "restored to height {height} (snapshot {snapshot_height})".format(**orjson.loads(restored.stdout))
        self._start_and_catch_up(index, fault)

    def byzantine(self, index: int, fault: Fault) -> None:
        self.devnet.stop_node(index)
        self.devnet.start_node(index, app_argv=[PYTHON, str(ROOT / "bench" / "byzantine_node.py"),
                                                "--home", self.devnet.nodes[index].home])
        time.sleep(BYZANTINE_S)
        log = Path(self.devnet.home / "logs" / f"{self.devnet.nodes[index].name}-app.log").read_text(errors="replace")
        fault.note = f"{log.count('byzantine proposal')} Byzantine proposals made"
        self._restart(index, fault, pause=0.0)

    def refused_flood(self, index: int, fault: Fault) -> None:
        codes = Counter(self._elsewhere("refused_flood"))
        self.refusals.update(codes)
        fault.note = f"{sum(codes.values())} refused calls sent: " + ", ".join(f"{k} {v}" for k, v in codes.most_common())

    def queries(self, index: int, fault: Fault) -> None:
        fault.note = f"{self._elsewhere('queries')} queries answered in 10 s"

    def _elsewhere(self, kind: str) -> Any:
        """Run a load-making fault in a process of its own, so it never starves the client's loop."""
        urls = ",".join(n.rpc for n in self.devnet.nodes)
        done = subprocess.run([PYTHON, __file__, "--run-fault", kind, "--urls", urls,
                               "--seed", str(self.random.randrange(2**32))], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{kind} failed: {done.stderr.strip()[-500:]}")
        return orjson.loads(done.stdout)

    def _restart(self, index: int, fault: Fault, pause: float) -> None:
        self.devnet.stop_node(index, sig=signal.SIGKILL)
        time.sleep(pause)
        self._start_and_catch_up(index, fault)

    def _start_and_catch_up(self, index: int, fault: Fault) -> None:
        began = time.monotonic()
        self.devnet.start_node(index)
        head = max(s.height or 0 for s in self.devnet.status())
        try:
            self.devnet.wait_for_height(head, timeout=180, nodes=[index])
            fault.catch_up_s = round(time.monotonic() - began, 1)
        except Exception as exc:  # reported, and the run goes on: the end checks judge the damage
            fault.note += f" did not catch up: {exc}"


async def _flood(urls: list[str], seed: int, count: int = 4000) -> Counter[str]:
    """Calls that every node must refuse in CheckTx, sent concurrently to every node: garbage,
    our magic then junk, calls signed for another cluster, and calls signed for this one with a
    60 KB payload and a counter far ahead (the attack that once filled CheckTx's cache)."""
    from rtc.protocol import SigningDomain, sign

    rng = random.Random(seed)
    key = SigningKey.generate()
    payload = orjson.dumps({"function": "update_high", "symbol": "x" * 60_000, "value": 1.0})
    codes: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:  # the first node that answers (one may be down for a fault)
            try:
                genesis = (await http.get(f"{url}/genesis")).json()["result"]["genesis"]
                break
            except (httpx.HTTPError, KeyError, ValueError):
                continue
        else:
            raise RuntimeError("no node answered /genesis")
        domain = SigningDomain.from_genesis(genesis["chain_id"], genesis.get("app_state"))

        async def one(i: int) -> None:
            kind = i % 4
            if kind == 0:
                tx = rng.randbytes(rng.randrange(1, 2000))
            elif kind == 1:
                tx = sign(key, "not-this-cluster", rng.randbytes(16), i, payload).encode()
            elif kind == 2:
                tx = bytes([0x52, 0x54, 0x43, 0x01]) + rng.randbytes(200)  # our magic, then junk
            else:
                tx = sign(key, domain, rng.randbytes(16), 10**6 + i, payload).encode()  # far ahead
            url = urls[i % len(urls)]
            try:
                answer = (await http.post(url, json={"jsonrpc": "2.0", "id": i, "method": "broadcast_tx_sync",
                                                     "params": {"tx": base64.b64encode(tx).decode()}})).json()
                code = int(answer.get("result", {}).get("code", -1))
                codes[_code_name(code) if code >= 0 else "rpc error"] += 1
            except httpx.HTTPError:
                codes["node unreachable"] += 1

        for start in range(0, count, 100):
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 100))))
    return codes


async def _queries(urls: list[str], seconds: float) -> int:
    answered = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            for url in urls:
                for path, data in ((queries.CALL, orjson.dumps({"function": "symbols"})),
                                   ("/state/" + b"high/S0".hex(), b"")):
                    try:
                        answer = (await http.get(f"{url}/abci_query", params={
                            "path": f'"{path}"', "data": "0x" + data.hex(), "prove": "true"})).json()
                        answered += "result" in answer
                    except httpx.HTTPError:
                        pass
    return answered


# -- the end checks ------------------------------------------------------------------


def divergence(devnet: Devnet) -> dict[str, Any]:
    """Heights at which the nodes' headers carry different app_hashes (each node where it has the block)."""
    by_height: dict[int, set[str]] = {}
    with httpx.Client(timeout=10) as http:
        for node in devnet.nodes:
            status = http.get(f"{node.rpc}/status").json()["result"]["sync_info"]
            low, high = int(status["earliest_block_height"]), int(status["latest_block_height"])
            for top in range(high, low - 1, -20):
                metas = http.get(f"{node.rpc}/blockchain", params={"minHeight": max(low, top - 19), "maxHeight": top})
                for meta in metas.json()["result"]["block_metas"]:
                    header = meta["header"]
                    by_height.setdefault(int(header["height"]), set()).add(header["app_hash"])
    differing = sorted(h for h, hashes in by_height.items() if len(hashes) > 1)
    return {"heights_compared": len(by_height), "heights_diverged": len(differing), "first": differing[:5]}


def lost_calls(devnet: Devnet, committed: list[Sent]) -> dict[str, Any]:
    """Calls the client was told committed whose result is not in the cluster's state."""
    lost: list[str] = []
    with httpx.Client(base_url=devnet.nodes[0].rpc, timeout=10) as http:
        for sent in committed:
            answer = http.get("/abci_query", params={"path": f'"{queries.result_path(sent.session, sent.counter)}"'})
            response = answer.json()["result"]["response"]
            value = base64.b64decode(response.get("value") or "")
            record = ResultRecord.decode(value) if value else None
            if record is None or record.status is not Status.OK or (sent.tx and record.tx != sent.tx):
                lost.append(f"{sent.session.hex()[:16]}/{sent.counter}")
    return {"checked": len(committed), "lost": len(lost), "examples": lost[:5]}


def failed_sessions(devnet: Devnet, load: Load) -> dict[str, Any]:
    ended: list[str] = []
    with httpx.Client(base_url=devnet.nodes[0].rpc, timeout=10) as http:
        for session in load.sessions:
            answer = http.get("/abci_query", params={"path": f'"{queries.session_path(session.session_key)}"'})
            value = base64.b64decode(answer.json()["result"]["response"].get("value") or "")
            record = SessionRecord.decode(value) if value else None
            if record is not None and record.status is not SessionStatus.OPEN:
                ended.append(f"{session.session_key.hex()[:16]}: {record.reason}")
    return {"sessions": len(load.sessions), "failed": len(ended), "reasons": ended}


# -- the run -------------------------------------------------------------------------


async def run_load_and_faults(devnet: Devnet, args: argparse.Namespace, faults: Faults) -> Load:
    urls = [n.rpc for n in devnet.nodes]
    trust = TrustPolicy.from_genesis_file(Path(devnet.nodes[0].home) / "config" / "genesis.json")
    async with AsyncClient(urls, trust) as client:
        load = Load(client, args.sessions, args.rate)
        running = asyncio.create_task(load.run())
        deadline = faults.started + args.fault_seconds
        kinds = list(FAULT_KINDS)
        faults.random.shuffle(kinds)
        i = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(args.gap)
            kind = kinds[i % len(kinds)]
            i += 1
            say(f"   t={time.monotonic() - faults.started:5.0f}s fault {kind}")
            fault = await asyncio.to_thread(faults.inject, kind)
            say(f"      {fault.node or 'cluster'}: {fault.took_s} s" +
                (f", caught up in {fault.catch_up_s} s" if fault.catch_up_s is not None else "") +
                (f"; {fault.note}" if fault.note else ""))
        await asyncio.sleep(5)  # the last calls settle
        load.stop()
        await running
    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="the whole run's bound, setup included (default 10)")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rate", type=float, default=6.0, help="calls a second per session (default 6)")
    parser.add_argument("--gap", type=float, default=8.0, help="seconds between faults (default 8)")
    parser.add_argument("--seed", type=int, default=None, help="picks the nodes and the fault order")
    parser.add_argument("--base-port", type=int, default=32000)
    parser.add_argument("--run-fault", choices=("refused_flood", "queries"), help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_fault:  # one load-making fault, in a process of its own (Faults._elsewhere)
        urls = args.urls.split(",")
        out = (asyncio.run(_flood(urls, args.seed)) if args.run_fault == "refused_flood"
               else asyncio.run(_queries(urls, seconds=10)))
        print(orjson.dumps(out).decode())
        return 0
    began = time.monotonic()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    home = WORK / "devnet"
    Devnet.remove(home)
    say(f"4-node devnet in {home} (seed {seed})")
    devnet = Devnet.create(home, 4, WASM / "stock.wasm", base_port=args.base_port, settings=SETTINGS,
                           snapshot_every=50, progress=lambda s: say(f"   {s}"))
    report: dict[str, Any] = {"seed": seed, "settings": SETTINGS.to_json()}
    try:
        devnet.start(progress=lambda s: say(f"   {s}"))
        watcher = Watcher(devnet)
        watcher.start()
        # what is left of the bound after setup, less the end checks (about a minute)
        args.fault_seconds = max(30.0, args.minutes * 60 - (time.monotonic() - began) - 90)
        faults = Faults(devnet, time.monotonic(), seed)
        say(f"load: {args.sessions} sessions x {args.rate} calls/s; faults every {args.gap} s "
            f"for {args.fault_seconds:.0f} s")
        load = asyncio.run(run_load_and_faults(devnet, args, faults))
        watch = watcher.stop()
        say("checking: every node at the head, app_hashes, committed calls, sessions")
        devnet.wait_for_height(watch.head, timeout=120)
        report.update(_figures(devnet, load, faults, watch))
    finally:
        devnet.stop()
    report["elapsed_s"] = round(time.monotonic() - began, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chaos.json").write_text(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")
    summary = markdown(report)
    _update_readme(summary)
    print(summary)
    broken = [name for name, ok in report["verdict"].items() if not ok]
    say("all invariants held" if not broken else f"BROKEN: {', '.join(broken)}")
    return 1 if broken else 0


def _figures(devnet: Devnet, load: Load, faults: Faults, watch: Watch) -> dict[str, Any]:
    lat = sorted(load.figures.latencies_ms)
    catch_ups = [f.catch_up_s for f in faults.done if f.catch_up_s is not None]
    figures = {
        "faults": {"by_kind": dict(Counter(f.kind for f in faults.done)), "log": [asdict(f) for f in faults.done]},
        "calls": {"sent": load.figures.sent, "committed": load.figures.committed, "failed": load.figures.failed,
                  "refused": dict(load.figures.refused), "unanswered": load.figures.unanswered,
                  "latency_p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
                  "latency_p99_ms": round(lat[int(len(lat) * 0.99)], 1) if lat else None},
        "flood_refusals": dict(faults.refusals),
        "lost": lost_calls(devnet, load.committed),
        "divergence": divergence(devnet),
        "sessions": failed_sessions(devnet, load),
        "longest_stall_s": round(watch.stall_s, 1), "stall_at_height": watch.stall_at_height, "head": watch.head,
        "catch_up_s": {"max": max(catch_ups, default=None), "all": catch_ups},
        "memory_high_water_mb": dict(sorted(watch.memory_mb.items())),
    }
    figures["verdict"] = {
        "no_call_lost": figures["lost"]["lost"] == 0,
        "no_divergence": figures["divergence"]["heights_diverged"] == 0,
        "no_session_failed": figures["sessions"]["failed"] == 0,
        "every_call_answered": load.figures.unanswered == 0 and load.figures.failed == 0,
        "every_restart_caught_up": all(f.catch_up_s is not None for f in faults.done if f.node),
    }
    return figures


def markdown(report: dict[str, Any]) -> str:
    calls, faults = report["calls"], report["faults"]
    memory = report["memory_high_water_mb"]
    app_peak = max((v for k, v in memory.items() if k.endswith("-app")), default=0)
    comet_peak = max((v for k, v in memory.items() if k.endswith("-cometbft")), default=0)
    rows = [
        "| faults injected | calls sent | committed | refused | lost | diverged heights | sessions failed | longest stall | slowest catch-up | memory peak app / CometBFT (VmHWM, with mapped store pages) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {sum(faults['by_kind'].values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults['by_kind'].items()))}) "
        f"| {calls['sent']} | {calls['committed']} | {sum(calls['refused'].values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(calls['refused'].items())) or 'none'}) "
        f"| {report['lost']['lost']} | {report['divergence']['heights_diverged']} of {report['divergence']['heights_compared']} "
        f"| {report['sessions']['failed']} of {report['sessions']['sessions']} | {report['longest_stall_s']} s "
        f"| {report['catch_up_s']['max']} s | {app_peak} / {comet_peak} MB |",
        "",
        f"Seed {report['seed']}; the whole run took {report['elapsed_s']} s; "
        f"{sum(report['flood_refusals'].values())} flood calls were refused "
        f"({', '.join(f'{k} {v}' for k, v in sorted(report['flood_refusals'].items()))}). "
        f"Commit latency under faults p50 {calls['latency_p50_ms']} ms, p99 {calls['latency_p99_ms']} ms.",
    ]
    return "\n".join(rows)


def _update_readme(summary: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- chaos:start -->", "<!-- chaos:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + "\n" + summary + "\n" + end + rest.split(end, 1)[1]
        readme.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
