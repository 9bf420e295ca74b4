#!/usr/bin/env bash
# Build the Rust example backends and test fixtures into WebAssembly components:
#   build/wasm/{sum,stock,stock-cartel,showcase,hostile,bad-import}.wasm
# Incremental: cargo rebuilds only what changed, and a component is re-made only when its
# core module is newer. Needs cargo/rustup and .venv/bin/wasm-tools (`make setup`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=wasm32-unknown-unknown
CARGO_DIR="$ROOT/build/cargo"
OUT_DIR="$ROOT/build/wasm"
WASM_TOOLS="${WASM_TOOLS:-$ROOT/.venv/bin/wasm-tools}"
# Output name and cargo crate of each component (a crate's core module is named after
# the crate, with '-' turned into '_').
COMPONENTS=(sum stock stock-cartel showcase hostile bad-import)

say() { printf 'build_examples: %s\n' "$*"; }
die() { printf 'build_examples: error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
[ -x "$WASM_TOOLS" ] || die "$WASM_TOOLS not found (run 'make setup' first)"

if command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
        say "adding rust target $TARGET"
        rustup target add "$TARGET"
    fi
elif [ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET" ]; then
    die "rust target $TARGET is not installed and rustup is not available"
fi

say "cargo build --release --target $TARGET"
cargo build --release --locked --target "$TARGET" --target-dir "$CARGO_DIR" \
    --manifest-path "$ROOT/Cargo.toml"

mkdir -p "$OUT_DIR"
for name in "${COMPONENTS[@]}"; do
    core="$CARGO_DIR/$TARGET/release/${name//-/_}.wasm"
    out="$OUT_DIR/$name.wasm"
    [ -f "$core" ] || die "missing core module $core"
    if [ "$core" -nt "$out" ]; then
        say "component new $name -> build/wasm/$name.wasm"
        "$WASM_TOOLS" component new "$core" -o "$out.tmp"
        mv -f "$out.tmp" "$out"
    fi
    if ! "$WASM_TOOLS" validate "$out"; then
        rm -f "$out"
        die "build/wasm/$name.wasm does not validate"
    fi
done
say "ok: ${#COMPONENTS[@]} components valid in build/wasm/"
