"""`rtc swarm hash|put|get` on files, a local store and a (fake) Bee node."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtc.cli.main import main
from rtc.swarm import bytes_reference, chunk_count

from .conftest import BATCH
from .fake_bee import FakeBee

HELLO = "92672a471f4419b255d7cb0cf313474a6f5856fb347c5ece85fb706d644b630f"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "hello"
    file.write_bytes(b"hello world")
    assert run(capsys, "swarm", "hash", str(file))[:2] == (0, HELLO + "\n")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(128 * 4096 + 1))
    code, out, _ = run(capsys, "swarm", "hash", "-J", str(big))
    assert code == 0
    assert json.loads(out) == {"reference": bytes_reference(big.read_bytes()).hex(), "size": 128 * 4096 + 1,
                               "chunks": chunk_count(128 * 4096 + 1)}
    assert json.loads(out)["chunks"] == 129 + 2


def test_put_get_local_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "data"
    file.write_bytes(os.urandom(10_000))
    store = tmp_path / "store"
    code, out, err = run(capsys, "swarm", "put", str(file), "--store", str(store))
    assert code == 0 and out.strip() == bytes_reference(file.read_bytes()).hex() and "uploading" in err
    reference = out.strip()
    out_file = tmp_path / "back"
    code, out, _ = run(capsys, "swarm", "get", reference, "--store", str(store), "-o", str(out_file), "-J")
    assert code == 0 and out_file.read_bytes() == file.read_bytes()
    assert json.loads(out)["size"] == 10_000


def test_get_to_stdout(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    store = tmp_path / "store"
    file = tmp_path / "hello"
    file.write_bytes(b"hello world")
    assert main(["swarm", "put", str(file), "--store", str(store)]) == 0
    capsysbinary.readouterr()
    assert main(["swarm", "get", HELLO, "--store", str(store)]) == 0
    assert capsysbinary.readouterr().out == b"hello world"


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "swarm", "get", "00" * 32, "--store", str(tmp_path / "s"))
    assert code == 1 and "no chunk store" in err and not (tmp_path / "s").exists()
    (tmp_path / "empty").write_bytes(b"")
    assert run(capsys, "swarm", "put", str(tmp_path / "empty"), "--store", str(tmp_path / "s"))[0] == 0
    code, _, err = run(capsys, "swarm", "get", "00" * 32, "--store", str(tmp_path / "s"))
    assert code == 1 and err.startswith("rtc: NotFound:") and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["swarm", "get", "abc", "--store", str(tmp_path / "s")])
    file = tmp_path / "f"
    file.write_bytes(b"x")
    code, _, err = run(capsys, "swarm", "put", str(file), "--bee", "http://127.0.0.1:1")
    assert code == 1 and "--batch" in err


def test_put_get_bee(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_bee: FakeBee) -> None:
    file = tmp_path / "data"
    file.write_bytes(os.urandom(5000))
    code, out, _ = run(capsys, "swarm", "put", str(file), "--bee", fake_bee.url, "--batch", BATCH, "-J")
    assert code == 0
    reference = json.loads(out)["reference"]
    assert reference == bytes_reference(file.read_bytes()).hex()
    out_file = tmp_path / "back"
    assert run(capsys, "swarm", "get", reference, "--bee", fake_bee.url, "-o", str(out_file))[0] == 0
    assert out_file.read_bytes() == file.read_bytes()
    fake_bee.fail = True
    code, _, err = run(capsys, "swarm", "get", reference, "--bee", fake_bee.url, "-o", str(out_file))
    assert code == 1 and "SwarmUnavailable" in err
