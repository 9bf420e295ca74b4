"""How far batch validation lags behind the head under the benchmark's light load.

A 4-node devnet with two batch validators takes the light load (20 tx/s, the same calls as
`bench/run.py`) for LOAD_SECONDS while the validation status is sampled every second
(`rtc.client.validation.read_status`): the lag in blocks and in clients' transactions, and
how long after the last call every call is validated. Standalone: `python bench/validation_lag.py`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import LoadGenerator, RtcTxs  # noqa: E402

from rtc.client.validation import read_status  # noqa: E402
from rtc.cometbft import RPC, NodeHome  # noqa: E402
from rtc.devnet import Devnet  # noqa: E402
from rtc.ethereum.validation import Validation  # noqa: E402
from rtc.protocol import SigningDomain  # noqa: E402

WASM = ROOT / "build" / "wasm"
WORK = ROOT / "build" / "bench"
RATE, LOAD_SECONDS = 20, 60
VALIDATORS = 2
CATCH_UP_TIMEOUT = 120.0


def _sample(devnet: Devnet, stop: threading.Event, samples: list[dict[str, Any]]) -> None:
    validation = Validation.connect(devnet.ethereum.url, devnet.ethereum.validation)
    with RPC(devnet.nodes[0].rpc) as rpc:
        while not stop.is_set():
            try:
                status = read_status(validation, devnet.ethereum.cluster_id, rpc, recent=0)
                samples.append({"t": time.monotonic(), "lag_blocks": status.lag_blocks, "lag_txs": status.lag_txs,
                                "validated_height": status.validated_height, "head": status.head_height})
            except Exception:  # noqa: BLE001 - a sample missed is not a figure
                pass
            stop.wait(1.0)


def measure(base_port: int = 31600) -> dict[str, Any]:
    home = WORK / "validation-lag"
    Devnet.remove(home)
    devnet = Devnet.create(home, 4, WASM / "stock.wasm", base_port=base_port, chain_id="rtc-bench-validation",
                           validators=VALIDATORS)
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    try:
        devnet.start()
        genesis = NodeHome(Path(devnet.nodes[0].home)).genesis()
        source = RtcTxs(SigningDomain.from_genesis(genesis.chain_id, genesis.app_state), sessions=16)
        sampler = threading.Thread(target=_sample, args=(devnet, stop, samples), daemon=True)

        async def load() -> Any:
            async with LoadGenerator([n.rpc for n in devnet.nodes]) as generator:
                await generator.fixed_rate(source.take(source.sessions), rate=100)
                sampler.start()
                return await generator.fixed_rate(source.take(RATE * LOAD_SECONDS), RATE)

        phase = asyncio.run(load())
        last_call = time.monotonic()
        while time.monotonic() - last_call < CATCH_UP_TIMEOUT:
            if samples and samples[-1]["t"] > last_call and samples[-1]["lag_txs"] == 0:
                break
            time.sleep(0.5)
        stop.set()
        sampler.join(timeout=10)
    finally:
        stop.set()
        devnet.stop()
    during = [s for s in samples if s["t"] <= last_call and s["validated_height"]]
    caught_up = next((s["t"] - last_call for s in samples if s["t"] > last_call and s["lag_txs"] == 0), None)

    def spread(key: str) -> dict[str, float]:
        values = sorted(s[key] for s in during) or [0]
        return {"p50": statistics.median(values), "max": values[-1]}

    return {"rate_tps": RATE, "seconds": LOAD_SECONDS, "validators": VALIDATORS, "samples": len(during),
            "committed": phase.summary().get("committed"), "lag_blocks": spread("lag_blocks"),
            "lag_txs": spread("lag_txs"),
            "all_validated_s_after_last_call": round(caught_up, 1) if caught_up is not None else None}


if __name__ == "__main__":
    figures = measure()
    print(json.dumps(figures, indent=2))
