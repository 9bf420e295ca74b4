"""scripts/gen_proto.py: gogoproto stripping and the idempotent generation."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_proto.py"

_spec = importlib.util.spec_from_file_location("gen_proto", SCRIPT)
assert _spec and _spec.loader
gen_proto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_proto)

SAMPLE = """syntax = "proto3";
package tendermint.x;

import "gogoproto/gogo.proto";
import "google/protobuf/timestamp.proto";

option go_package = "example.com/x";
option (gogoproto.equal_all) = true;

// A comment with [brackets] and (gogoproto.nullable) = false stays untouched.
enum Flag {
  option (gogoproto.goproto_enum_prefix) = false;
  FLAG_UNKNOWN = 0 [(gogoproto.enumvalue_customname) = "Unknown"]; // trailing
  FLAG_ON = 1;
}

message M {
  option (gogoproto.equal) = true;
  google.protobuf.Timestamp time = 1 [
    (gogoproto.nullable) = false,
    (gogoproto.stdtime) = true
  ];
  int64 gas = 2 [json_name = "gas_wanted", (gogoproto.jsontag) = "a,b;c]"];
  string s = 3 [(gogoproto.customname) = "S", deprecated = true];
  bytes b = 4;
}
"""


def test_strip_gogoproto() -> None:
    out = gen_proto.strip_gogoproto(SAMPLE)
    code = "\n".join(line.split("//")[0] for line in out.splitlines())
    assert "gogoproto" not in code
    assert "// A comment with [brackets] and (gogoproto.nullable) = false stays untouched." in out
    assert "  FLAG_UNKNOWN = 0; // trailing\n" in out
    assert "  google.protobuf.Timestamp time = 1;\n" in out
    assert '  int64 gas = 2 [json_name = "gas_wanted"];\n' in out
    assert "  string s = 3 [deprecated = true];\n" in out
    assert 'option go_package = "example.com/x";\n\n// A comment' in out  # whole option lines removed
    assert "message M {\n  google.protobuf.Timestamp" in out


def test_generation_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "_pb"
    cmd = [sys.executable, str(SCRIPT), "--cometbft-version", "v0.39.4", "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "generated" in first.stdout and len(first.stdout.strip().splitlines()) == 1
    stamp = json.loads((out / "_stamp.json").read_text())
    assert stamp["cometbft_version"] == "v0.39.4"
    types_py = (out / "tendermint" / "abci" / "types_pb2.py").read_text()
    assert "from rtc.abci._pb.tendermint.types import params_pb2" in types_py
    for path in out.rglob("*.py*"):
        text = path.read_text()
        assert "\nfrom tendermint" not in text and "\nimport tendermint" not in text, path
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        assert (directory / "__init__.py").is_file(), directory
    for rel in ["types/canonical_pb2.py", "types/block_pb2.py", "types/validator_pb2.py",
                "version/types_pb2.py", "crypto/keys_pb2.py", "crypto/proof_pb2.py"]:
        assert (out / "tendermint" / rel).is_file(), rel

    mtime = (out / "tendermint" / "abci" / "types_pb2.py").stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "up to date" in second.stdout
    assert (out / "tendermint" / "abci" / "types_pb2.py").stat().st_mtime_ns == mtime


def test_generated_types_match_the_wire() -> None:
    """The stubs the package uses round-trip the messages the server relies on."""
    from rtc.abci import abci_pb as pb
    from rtc.abci._pb import COMETBFT_VERSION
    from rtc.abci._pb.tendermint.types import types_pb2

    assert COMETBFT_VERSION == "v0.39.4"
    req = pb.Request(finalize_block=pb.RequestFinalizeBlock(txs=[b"a"], height=9))
    assert pb.Request.FromString(req.SerializeToString()) == req
    assert types_pb2.Header(height=3).height == 3
    # Oneof field numbers CometBFT uses on the wire.
    assert pb.Request.DESCRIPTOR.fields_by_name["finalize_block"].number == 20
    assert pb.Response.DESCRIPTOR.fields_by_name["exception"].number == 1
    with pytest.raises(KeyError):
        pb.Request.DESCRIPTOR.fields_by_name["deliver_tx"]
