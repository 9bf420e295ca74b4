"""`rtc` as a user runs it: a detached devnet driven from the command line, then torn down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import component_path
from tests.helpers import CliRun, rtc_process
from tests.helpers import rtc as rtc_here

from .conftest import _PORTS


def rtc(*args: str, check: bool = True) -> CliRun:
    return rtc_process(*args, check=check)


def modules_loaded_by(argv: list[str]) -> set[str]:
    code = (f"import sys\nfrom rtc.cli.main import main\ncode = main({argv!r})\n"
            "print(' '.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return set(result.stdout.split())


def test_help_teaches() -> None:
    top = rtc("--help").out
    assert "devnet" in top and "rtc call --home" in top
    up = rtc("devnet", "up", "--help").out
    assert "--nodes" in up and "--detach" in up


def test_inspect_lists_entry_points_and_refuses_foreign_imports() -> None:
    listing = json.loads(rtc("inspect", str(component_path("stock")), "--json-output").out)
    assert {e["name"] for e in listing["entry_points"]} == {"update_high", "get_high", "symbols"}
    refused = rtc("inspect", str(component_path("bad-import")), check=False)
    assert refused.code == 1 and "evil:net/socket" in refused.err


NOWHERE = "http://127.0.0.1:9"  # nothing listens: these are refused before any I/O


def test_a_call_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    """Issue 12: {"function":"greet","function":"stats"} ran stats (the last key won)."""
    key = str(tmp_path / "client.key")
    for argv in (['{"function": "greet", "function": "stats"}'], ['{"function": "sum", "x": 1, "x": 2}'],
                 ['{"function": "put", "v": {"a": 1, "a": 2}}'], ["sum", "x=1", "x=2"], ["sum", 'x={"a": 1, "a": 2}'],
                 ["greet", "function=stats"]):
        for command in (["call", "--key", key], ["query"]):
            refused = rtc_here(*command, "--node", NOWHERE, *argv)
            assert refused.code != 0 and "twice" in refused.err and "cannot reach" not in refused.err, (argv, refused)
    fine = rtc_here("call", "--node", NOWHERE, "--key", key, "sum", "x=1", "y=2")
    assert fine.code == 1 and "cannot reach" in fine.err  # parsed, then the node is not there


def test_verify_needs_a_trust_anchor_or_an_explicit_trust_on_first_use() -> None:
    """Issue 12: --verify against a node that is not a devnet's trusted that node's own genesis, with a warning."""
    for command in (["result", "--session", "00" * 48, "--counter", "0"], ["call", "sum", "x=1", "y=2"]):
        refused = rtc_here(*command, "--node", NOWHERE, "--verify")
        assert refused.code == 1 and "--trust-on-first-use" in refused.err, refused
        assert "cannot reach" not in refused.err  # refused before asking the node anything
    asked = rtc_here("result", "--session", "00" * 48, "--counter", "0", "--node", NOWHERE, "--verify",
                     "--trust-on-first-use")
    assert asked.code == 1 and "cannot reach" in asked.err and "trust-on-first-use" in asked.err


def test_devnet_refuses_a_component_with_foreign_imports(tmp_path: Path) -> None:
    result = rtc("devnet", "up", "--nodes", "4", "--app", str(component_path("bad-import")),
                 "--home", str(tmp_path / "bad"), "--detach", check=False)
    assert result.code == 1 and "evil:net/socket" in result.err
    assert not (tmp_path / "bad").exists()


def test_detached_devnet_from_the_command_line(tmp_path: Path) -> None:
    home = str(tmp_path / "cli")
    up = rtc("devnet", "up", "--nodes", "4", "--app", str(component_path("sum")), "--home", home,
             "--detach", "--base-port", str(next(_PORTS)), "--json")
    endpoints = json.loads(up.out)
    assert len(endpoints["nodes"]) == 4
    try:
        key = str(tmp_path / "client.key")
        called = rtc("call", "--home", home, "--key", key, "sum", "x=5", "y=3")
        assert called.out.startswith("8\n") and "height" in called.out
        as_json = rtc("call", "--home", home, "--key", key, '{"function": "sum", "x": -7, "y": 2}', "--json").json
        assert as_json["status"] == "ok" and as_json["value"] == -5 and as_json["height"] > 1
        via_node = rtc("call", "--node", endpoints["nodes"][2]["rpc"], "--key", key, "sum", "x=1", "y=1")
        assert via_node.out.startswith("2\n")
        # Several nodes: the first is down, the client fails over; the receipt names what it trusted.
        tofu = rtc("call", "--node", NOWHERE, "--node", endpoints["nodes"][1]["rpc"], "--key", key, "sum", "x=2", "y=5",
                   "--verify", "--trust-on-first-use", "-J").json
        assert tofu["ok"] and tofu["result"]["value"] == 7 and "trust on first use" in tofu["trust"]
        assert "trust on first use" in next(c for c in tofu["checks"] if c["name"] == "validator_set")["assumption"]
        fetched = json.loads(rtc("result", "--home", home, "--session", as_json["session"], "--counter", "0", "-J").out)
        assert fetched["value"] == -5 and fetched["height"] == as_json["height"]
        for argv in (["call", "--home", home, "--key", key, "sum", "x=2", "y=2"], ["query", "--home", home, "sum", "x=1"]):
            loaded = modules_loaded_by(argv)  # against the running devnet, as a user runs them
            assert not [m for m in loaded if m.startswith(("web3", "eth_account", "wasmtime", "lmdb"))], argv
        refused = rtc("call", "--home", home, "--key", key, "sum", "x=5", "y=oops", check=False)
        assert refused.code == 2 and "argument 'y': expected s32, got string" in refused.out
        members = json.loads(rtc("cluster", "members", "--home", home, "-J").out)["members"]
        assert [m["name"] for m in members] == ["node0", "node1", "node2", "node3"]
        assert all(m["status"] == "active" and m["deposit_wei"] == 10 * 10**18 for m in members)
        status = json.loads(rtc("devnet", "status", "--home", home, "--json").out)
        assert [n["name"] for n in status["nodes"]] == ["node0", "node1", "node2", "node3"]
        assert all(set(n) >= {"name", "rpc", "height", "app_hash"} for n in status["nodes"])
        assert all(n["height"] >= 2 for n in status["nodes"])
    finally:
        manifest = json.loads((Path(home) / "devnet.json").read_text())
        rtc("devnet", "down", "--home", home)
    pids = [n[k] for n in manifest["nodes"] for k in ("app_pid", "cometbft_pid")] + [manifest["ethereum"]["anvil_pid"]]
    assert all(pid > 0 for pid in pids)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2], f"{pid} still runs"
