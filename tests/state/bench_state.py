"""Benchmark of the state store's block path (not collected by pytest).

Run: ``.venv/bin/python tests/state/bench_state.py [--keys 100000] [--changes 1000]``.
Reports the median time to compute the root of, and commit, a block of random
changes (40% inserts, 40% overwrites, 20% deletes) into a pre-filled store,
and the time to produce and verify one proof.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rtc.protocol import verify_proof
from rtc.state import StateStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None, help="parent directory for the store (default: temp)")
    args = parser.parse_args()

    rng = random.Random(1)
    workdir = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        store = StateStore.open(workdir / "state")
        keys = [rng.randbytes(rng.randint(8, 48)) for _ in range(args.keys)]
        overlay = store.begin()
        for key in keys:
            overlay.set(key, rng.randbytes(rng.randint(16, 256)))
        started = time.perf_counter()
        store.commit(overlay, 1)
        print(f"initial load of {args.keys} keys in one block: {time.perf_counter() - started:.2f} s")

        root_times, commit_times, total_times = [], [], []
        for height in range(2, 2 + args.blocks):
            overlay = store.begin()
            for _ in range(args.changes):
                roll = rng.random()
                if roll < 0.4:
                    key = rng.randbytes(rng.randint(8, 48))
                    keys.append(key)
                    overlay.set(key, rng.randbytes(rng.randint(16, 256)))
                elif roll < 0.8:
                    overlay.set(rng.choice(keys), rng.randbytes(rng.randint(16, 256)))
                else:
                    overlay.delete(rng.choice(keys))
            started = time.perf_counter()
            overlay.root()
            rooted = time.perf_counter()
            store.commit(overlay, height)
            done = time.perf_counter()
            root_times.append(rooted - started)
            commit_times.append(done - rooted)
            total_times.append(done - started)
        print(
            f"block of {args.changes} changes: root() {statistics.median(root_times) * 1e3:.1f} ms, "
            f"commit write+fsync {statistics.median(commit_times) * 1e3:.1f} ms, "
            f"total {statistics.median(total_times) * 1e3:.1f} ms (median of {args.blocks}; "
            f"min {min(total_times) * 1e3:.1f}, max {max(total_times) * 1e3:.1f})"
        )

        sample = rng.sample(keys, 2000)
        started = time.perf_counter()
        proofs = [store.prove(key) for key in sample]
        proved = time.perf_counter()
        assert all(verify_proof(store.root, proof) for proof in proofs)
        verified = time.perf_counter()
        sizes = [len(proof.to_bytes()) for proof in proofs]
        print(
            f"proof: produce {(proved - started) / len(sample) * 1e6:.1f} us, "
            f"verify {(verified - proved) / len(sample) * 1e6:.1f} us, "
            f"{statistics.mean(len(p.siblings) for p in proofs):.1f} siblings, "
            f"{statistics.mean(sizes):.0f} bytes encoded (mean)"
        )
        started = time.perf_counter()
        store.check_integrity()
        print(f"check_integrity (full rebuild): {time.perf_counter() - started:.2f} s")
        data_size = (workdir / "state" / "data.mdb").stat().st_size
        print(f"data.mdb size: {data_size / 1e6:.1f} MB")
        store.close()
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
