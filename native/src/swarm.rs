//! Swarm's chunk hashing, as `rtc/swarm/bmt.py` specifies it (Bee's references): the
//! Keccak-256 Binary Merkle Tree of one chunk payload. The Python module stays the
//! reference; tests/native/test_swarm_differential.py and Bee's vectors hold both to it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha3::{Digest, Keccak256};

const CHUNK_SIZE: usize = 4096;
const SEGMENT_SIZE: usize = 32;
const LEVELS: usize = 7; // 128 segments -> 1 root

fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// ZERO[k]: the hash of a subtree of 2^k all-zero segments.
fn zero_hashes() -> [[u8; 32]; LEVELS + 1] {
    let mut hashes = [[0u8; 32]; LEVELS + 1];
    for level in 1..=LEVELS {
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(&hashes[level - 1]);
        pair[32..].copy_from_slice(&hashes[level - 1]);
        hashes[level] = keccak(&pair);
    }
    hashes
}

/// `bmt.bmt_root`: only the pairs that touch the payload's bytes are hashed.
pub fn bmt_root(payload: &[u8]) -> PyResult<[u8; 32]> {
    if payload.len() > CHUNK_SIZE {
        return Err(PyValueError::new_err(format!(
            "a chunk payload holds at most {CHUNK_SIZE} bytes, not {}", payload.len())));
    }
    let zero = zero_hashes();
    if payload.is_empty() {
        return Ok(zero[LEVELS]);
    }
    let mut scratch = [0u8; CHUNK_SIZE + SEGMENT_SIZE];
    scratch[..payload.len()].copy_from_slice(payload);
    let mut live = payload.len().div_ceil(SEGMENT_SIZE);
    for level in zero.iter().take(LEVELS) {
        if live & 1 == 1 {
            scratch[live * SEGMENT_SIZE..(live + 1) * SEGMENT_SIZE].copy_from_slice(level);
        }
        live = (live + 1) >> 1;
        for i in 0..live {
            let digest = keccak(&scratch[64 * i..64 * i + 64]);
            scratch[32 * i..32 * i + 32].copy_from_slice(&digest);
        }
    }
    let mut root = [0u8; 32];
    root.copy_from_slice(&scratch[..32]);
    Ok(root)
}

#[pyfunction]
#[pyo3(name = "bmt_root")]
pub fn py_bmt_root<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &bmt_root(payload)?))
}

/// keccak256 of `data`.
#[pyfunction]
#[pyo3(name = "keccak256")]
pub fn py_keccak256<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &keccak(data))
}

/// `bmt.chunk_address`: keccak256(span (u64 LE) || bmt_root(payload)).
#[pyfunction]
pub fn chunk_address<'py>(py: Python<'py>, span: u64, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let mut data = [0u8; 40];
    data[..8].copy_from_slice(&span.to_le_bytes());
    data[8..].copy_from_slice(&bmt_root(payload)?);
    Ok(PyBytes::new(py, &keccak(&data)))
}
