#!/usr/bin/env python3
"""Generate Python protobuf stubs for CometBFT's ABCI and core types.

Why this exists: CometBFT's .proto files are annotated with gogoproto options
that only matter to Go. We take the files straight from the Go module cache
(so the wire format always matches the CometBFT version we run), strip the
gogoproto annotations, run grpc_tools' protoc, and rewrite the generated
absolute imports (``from tendermint.abci import ...``) into package-relative
ones (``from rtc.abci._pb.tendermint.abci import ...``) so nothing has to touch
``sys.path``.

Output goes to ``src/rtc/abci/_pb/`` (gitignored). A stamp file records the
CometBFT version and a hash of every input, so re-running is a cheap no-op.

Usage:  .venv/bin/python scripts/gen_proto.py --cometbft-version v0.39.4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = "github.com/cometbft/cometbft"
DEFAULT_VERSION = "v0.39.4"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "src" / "rtc" / "abci" / "_pb"
PY_PACKAGE = "rtc.abci._pb"
STAMP_NAME = "_stamp.json"

# Roots we need; their transitive tendermint/ imports are added automatically.
ROOT_PROTOS = (
    "tendermint/abci/types.proto",
    "tendermint/types/canonical.proto",
    "tendermint/types/types.proto",
    "tendermint/types/validator.proto",
    "tendermint/types/block.proto",
    "tendermint/types/params.proto",
    "tendermint/types/evidence.proto",
    "tendermint/version/types.proto",
    "tendermint/crypto/keys.proto",
    "tendermint/crypto/proof.proto",
)

_IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.M)
_GOGO_IMPORT_RE = re.compile(r'^[ \t]*import\s+(?:public\s+|weak\s+)?"gogoproto/gogo\.proto"\s*;[ \t]*\n?', re.M)
_GOGO_OPTION_STMT_RE = re.compile(r"option\s*\(\s*gogoproto\.")


class GenProtoError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Locating the CometBFT module


def _go_env(var: str) -> str:
    try:
        out = subprocess.run(["go", "env", var], check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise GenProtoError("the `go` tool is not on PATH; it is needed to locate the CometBFT module") from e
    except subprocess.CalledProcessError as e:
        raise GenProtoError(f"`go env {var}` failed: {e.stderr.strip()}") from e
    return out.stdout.strip()


def _escape_module_path(path: str) -> str:
    # Go's module cache escapes upper-case letters as '!' + lower-case.
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def locate_module(version: str) -> tuple[Path, bool]:
    """Return (module directory, downloaded?), fetching it with `go mod download` if needed."""
    modcache = os.environ.get("GOMODCACHE") or _go_env("GOMODCACHE")
    candidate = Path(modcache) / f"{_escape_module_path(MODULE)}@{version}"
    if (candidate / "proto" / "tendermint").is_dir():
        return candidate, False
    try:
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),  # outside any module, so no go.mod is touched
        )
    except FileNotFoundError as e:
        raise GenProtoError("the `go` tool is not on PATH; it is needed to fetch the CometBFT module") from e
    except subprocess.CalledProcessError as e:
        raise GenProtoError(f"`go mod download {MODULE}@{version}` failed:\n{e.stdout}{e.stderr}") from e
    info = json.loads(out.stdout)
    if info.get("Error"):
        raise GenProtoError(f"`go mod download {MODULE}@{version}`: {info['Error']}")
    directory = Path(info["Dir"])
    if not (directory / "proto" / "tendermint").is_dir():
        raise GenProtoError(f"{directory} has no proto/tendermint folder")
    return directory, True


# --------------------------------------------------------------------------
# gogoproto stripping


def _skip_string(src: str, i: int) -> int:
    """Index just past the string literal starting at src[i]."""
    quote = src[i]
    i += 1
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == quote:
            return i + 1
        i += 1
    raise GenProtoError("unterminated string literal in .proto file")


def _skip_comment(src: str, i: int) -> int | None:
    """If a comment starts at src[i], return the index just past it."""
    if src.startswith("//", i):
        j = src.find("\n", i)
        return len(src) if j < 0 else j
    if src.startswith("/*", i):
        j = src.find("*/", i + 2)
        if j < 0:
            raise GenProtoError("unterminated block comment in .proto file")
        return j + 2
    return None


def _scan_until(src: str, i: int, stop: str) -> int:
    """Index of the first top-level `stop` char at or after i (strings, comments, nesting skipped)."""
    depth = 0
    n = len(src)
    while i < n:
        c = src[i]
        end = _skip_comment(src, i)
        if end is not None:
            i = end
            continue
        if c in "\"'":
            i = _skip_string(src, i)
            continue
        if c in "[{(":
            depth += 1
        elif c in "]})":
            if depth == 0 and c == stop:
                return i
            depth -= 1
        elif c == stop and depth == 0:
            return i
        i += 1
    raise GenProtoError(f"expected {stop!r} in .proto file")


def _split_top_level(body: str) -> list[str]:
    """Split an option list body on top-level commas, dropping comments."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        end = _skip_comment(body, i)
        if end is not None:
            i = end
            continue
        if c in "\"'":
            j = _skip_string(body, i)
            cur.append(body[i:j])
            i = j
            continue
        if c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    tail = "".join(cur).strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def strip_gogoproto(src: str) -> str:
    """Remove the gogoproto import and every gogoproto option from a .proto source."""
    src = _GOGO_IMPORT_RE.sub("", src)
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        end = _skip_comment(src, i)
        if end is not None:
            out.append(src[i:end])
            i = end
            continue
        if c in "\"'":
            j = _skip_string(src, i)
            out.append(src[i:j])
            i = j
            continue
        if c == "[":
            j = _scan_until(src, i + 1, "]")
            kept = [p for p in _split_top_level(src[i + 1 : j]) if not p.startswith("(gogoproto.")]
            if kept:
                out.append("[" + ", ".join(kept) + "]")
            else:
                while out and out[-1] in (" ", "\t"):
                    out.pop()
            i = j + 1
            continue
        if c == "o" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            if _GOGO_OPTION_STMT_RE.match(src, i):
                i = _scan_until(src, i, ";") + 1
                # Drop the whole line when the statement stood alone on it.
                while out and out[-1] in (" ", "\t"):
                    out.pop()
                while i < n and src[i] in " \t":
                    i += 1
                if i < n and src[i] == "\n" and (not out or out[-1].endswith("\n")):
                    i += 1
                continue
        out.append(c)
        i += 1
    text = "".join(out)
    code_only = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    if "gogoproto" in code_only:
        raise GenProtoError("gogoproto reference survived stripping")
    return text


# --------------------------------------------------------------------------
# Generation


def collect_protos(proto_root: Path) -> dict[str, str]:
    """Read the root protos and their transitive tendermint/ imports: {relpath: source}."""
    sources: dict[str, str] = {}
    todo = list(ROOT_PROTOS)
    while todo:
        rel = todo.pop()
        if rel in sources:
            continue
        path = proto_root / rel
        if not path.is_file():
            raise GenProtoError(f"missing {path}")
        text = path.read_text(encoding="utf-8")
        sources[rel] = text
        for imp in _IMPORT_RE.findall(text):
            if imp.startswith("tendermint/"):
                todo.append(imp)
            elif not (imp.startswith("google/protobuf/") or imp == "gogoproto/gogo.proto"):
                raise GenProtoError(f"{rel} imports unsupported file {imp}")
    return dict(sorted(sources.items()))


def _tool_versions() -> tuple[str, str]:
    try:
        import grpc_tools  # noqa: F401
        from importlib.metadata import version
    except ImportError as e:
        raise GenProtoError("grpcio-tools is not installed in this interpreter (use .venv/bin/python)") from e
    return version("grpcio-tools"), version("protobuf")


def inputs_hash(version: str, sources: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(f"cometbft={version}\n".encode())
    h.update(("grpcio-tools=%s protobuf=%s\n" % _tool_versions()).encode())
    h.update(Path(__file__).read_bytes())
    for rel, text in sources.items():
        h.update(f"\0{rel}\0".encode())
        h.update(text.encode())
    return h.hexdigest()


def expected_outputs(sources: dict[str, str]) -> list[str]:
    return [rel[: -len(".proto")] + "_pb2.py" for rel in sources]


def _rewrite_imports(text: str) -> str:
    text = re.sub(r"^(\s*)from tendermint(\.[\w.]+)? import ", rf"\1from {PY_PACKAGE}.tendermint\2 import ", text, flags=re.M)
    text = re.sub(r"^(\s*)import tendermint\.", rf"\1import {PY_PACKAGE}.tendermint.", text, flags=re.M)
    return text


def generate(version: str, sources: dict[str, str], out_dir: Path, digest: str) -> int:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gen_proto-") as tmp:
        src_dir = Path(tmp) / "src"
        gen_dir = Path(tmp) / "gen"
        gen_dir.mkdir()
        for rel, text in sources.items():
            dest = src_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(strip_gogoproto(text), encoding="utf-8")
        args = [
            "grpc_tools.protoc",
            f"-I{src_dir}",
            f"-I{include}",
            f"--python_out={gen_dir}",
            f"--pyi_out={gen_dir}",
            *sources.keys(),
        ]
        cwd = os.getcwd()
        os.chdir(src_dir)  # protoc resolves the relative file names against -I paths
        try:
            rc = protoc.main(args)
        finally:
            os.chdir(cwd)
        if rc != 0:
            raise GenProtoError(f"protoc failed with exit code {rc}")

        count = 0
        for path in sorted(gen_dir.rglob("*")):
            if path.suffix in (".py", ".pyi"):
                path.write_text(_rewrite_imports(path.read_text(encoding="utf-8")), encoding="utf-8")
                count += path.suffix == ".py"
        for directory in [gen_dir, *(p for p in gen_dir.rglob("*") if p.is_dir())]:
            init = directory / "__init__.py"
            if not init.exists():
                init.write_text("", encoding="utf-8")
        (gen_dir / "__init__.py").write_text(
            '"""Generated protobuf modules for CometBFT (scripts/gen_proto.py). Do not edit."""\n'
            f"COMETBFT_VERSION = {version!r}\n",
            encoding="utf-8",
        )
        missing = [rel for rel in expected_outputs(sources) if not (gen_dir / rel).is_file()]
        if missing:
            raise GenProtoError(f"protoc did not produce {missing}")
        (gen_dir / STAMP_NAME).write_text(
            json.dumps({"cometbft_version": version, "inputs_sha256": digest}, indent=1) + "\n",
            encoding="utf-8",
        )

        # Swap the new tree into place in one rename, so a crash never leaves a half tree.
        staged = Path(tempfile.mkdtemp(prefix="._pb-new-", dir=out_dir.parent))
        shutil.rmtree(staged)
        shutil.copytree(gen_dir, staged)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f"._pb-old-{os.getpid()}"
            os.rename(out_dir, old)
        os.rename(staged, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return count


def is_up_to_date(out_dir: Path, version: str, digest: str, sources: dict[str, str]) -> bool:
    try:
        stamp = json.loads((out_dir / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stamp.get("cometbft_version") != version or stamp.get("inputs_sha256") != digest:
        return False
    return all((out_dir / rel).is_file() for rel in expected_outputs(sources))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cometbft-version", default=DEFAULT_VERSION, help="CometBFT module version, e.g. v0.39.4")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output package directory")
    parser.add_argument("--force", action="store_true", help="regenerate even if the stamp matches")
    args = parser.parse_args(argv)

    version = args.cometbft_version
    if not version.startswith("v"):
        version = "v" + version
    out_dir: Path = args.out.resolve()
    started = time.monotonic()
    try:
        module_dir, downloaded = locate_module(version)
        sources = collect_protos(module_dir / "proto")
        digest = inputs_hash(version, sources)
        if not args.force and is_up_to_date(out_dir, version, digest, sources):
            print(f"gen_proto: cometbft {version} stubs up to date in {_display(out_dir)}")
            return 0
        count = generate(version, sources, out_dir, digest)
    except GenProtoError as e:
        print(f"gen_proto: error: {e}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    source = " (module fetched with `go mod download`)" if downloaded else ""
    print(
        f"gen_proto: generated {count} modules from cometbft {version}{source} "
        f"into {_display(out_dir)} in {elapsed:.2f}s"
    )
    return 0


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
