"""Child process for the crash test: commits deterministic blocks until killed.

Run as ``python state_crash_writer.py STORE_DIR``.  Block h's changes depend on
h only, so the parent can replay blocks 1..h to know the exact state at h.
Prints each height after its commit returns.
"""

from __future__ import annotations

import random
import sys

KEY_SPACE = 3000


def block_changes(height: int) -> dict[bytes, bytes | None]:
    """The changes of block `height` (deterministic)."""
    rng = random.Random(height)
    changes: dict[bytes, bytes | None] = {}
    for _ in range(rng.randint(50, 600)):
        key = b"key-%d" % rng.randrange(KEY_SPACE)
        changes[key] = None if rng.random() < 0.3 else b"h%d-" % height + rng.randbytes(rng.randint(0, 300))
    return changes


def replay(height: int) -> dict[bytes, bytes]:
    """State after committing blocks 1..height."""
    state: dict[bytes, bytes] = {}
    for h in range(1, height + 1):
        for key, value in block_changes(h).items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def report(line: str) -> None:
    """One whole line per write, so a kill cannot leave a misleading fragment."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(path: str) -> None:
    from rtc.state import StateStore

    store = StateStore.open(path)
    report(f"open {store.height}")
    while True:
        height = 1 if store.height is None else store.height + 1
        overlay = store.begin()
        for key, value in block_changes(height).items():
            if value is None:
                overlay.delete(key)
            else:
                overlay.set(key, value)
        store.commit(overlay, height)
        report(f"committed {height}")


if __name__ == "__main__":
    main(sys.argv[1])
