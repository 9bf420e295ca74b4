//! The batch update of the compact sparse Merkle tree, as `rtc/state/merkle.py` specifies it
//! (`update_tree`): the same node records at the same positions, written in the same order,
//! and the same root. The Python module stays the reference; tests/native holds both to the
//! same random trees, and tests/state holds the reference to a naive one.
//!
//! Nodes are read through the store's `read_node(position) -> record | None`, only along the
//! changed paths.

use std::collections::HashMap;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sha2::{Digest, Sha256};

pyo3::create_exception!(rtc_native, TreeCorrupt, PyRuntimeError, "The stored nodes contradict each other.");

const MAX_DEPTH: usize = 256;
const LEAF_TAG: u8 = 0x00;
const INNER_TAG: u8 = 0x01;
const EMPTY_HASH: [u8; 32] = [0; 32];

type Hash = [u8; 32];
/// A subtree's result during an update: its hash, and its leaf record while it may still move up.
type Outcome = (Hash, Option<Vec<u8>>);

fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

fn bit(path: &[u8], depth: usize) -> bool {
    (path[depth >> 3] >> (7 - (depth & 7))) & 1 == 1
}

fn high_bits_mask(rest: usize) -> u8 {
    ((0xFF00u16 >> rest) & 0xFF) as u8
}

/// `node_position`: `path` cut to its first `depth` bits, then `depth` as a big-endian u16.
fn node_position(depth: usize, path: &[u8]) -> Vec<u8> {
    let (whole, rest) = (depth / 8, depth % 8);
    let mut out = Vec::with_capacity(whole + 3);
    out.extend_from_slice(&path[..whole]);
    if rest > 0 {
        out.push(path[whole] & high_bits_mask(rest));
    }
    out.extend_from_slice(&(depth as u16).to_be_bytes());
    out
}

/// `_child_position`: child `bit` of the node at `depth` on `path`.
fn child_position(depth: usize, path: &[u8], right: bool) -> Vec<u8> {
    let child_depth = depth + 1;
    let mut prefix = path[..child_depth.div_ceil(8)].to_vec();
    let (index, offset) = (depth / 8, depth % 8);
    if right {
        prefix[index] |= 0x80 >> offset;
    } else {
        prefix[index] &= !(0x80u8 >> offset);
    }
    let rest = child_depth % 8;
    if rest > 0 {
        let last = prefix.len() - 1;
        prefix[last] &= high_bits_mask(rest);
    }
    prefix.extend_from_slice(&(child_depth as u16).to_be_bytes());
    prefix
}

/// `_right_half_start`: the smallest path in the right child of the node at `depth` on `path`.
fn right_half_start(path: &[u8], depth: usize) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..depth / 8].copy_from_slice(&path[..depth / 8]);
    let (index, offset) = (depth / 8, depth % 8);
    out[index] = (path[index] & high_bits_mask(offset)) | (0x80 >> offset);
    out
}

/// A node record: its tag, then a leaf's path and value hash, or an inner node's two child hashes.
fn node_record(tag: u8, first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(65);
    record.push(tag);
    record.extend_from_slice(first);
    record.extend_from_slice(second);
    record
}

struct Updater<'py> {
    read_node: Bound<'py, PyAny>,
    // the writes in first-assignment order, as a Python dict keeps them
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    index: HashMap<Vec<u8>, usize>,
}

impl<'py> Updater<'py> {
    fn write(&mut self, position: Vec<u8>, record: Option<Vec<u8>>) {
        match self.index.get(&position) {
            Some(&i) => self.writes[i].1 = record,
            None => {
                self.index.insert(position.clone(), self.writes.len());
                self.writes.push((position, record));
            }
        }
    }

    fn read(&self, position: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let record = self.read_node.call1((PyBytes::new(self.read_node.py(), position),))?;
        if record.is_none() {
            return Ok(None);
        }
        Ok(Some(record.cast::<PyBytes>()?.as_bytes().to_vec()))
    }

    fn missing(position: &[u8]) -> PyErr {
        let hex: String = position.iter().map(|b| format!("{b:02x}")).collect();
        TreeCorrupt::new_err(format!("missing node at {hex}"))
    }

    /// `_Updater._split`: the first index in paths[lo..hi] whose bit `depth` is 1.
    fn split(paths: &[Hash], depth: usize, lo: usize, hi: usize) -> usize {
        if bit(&paths[lo], depth) {
            return lo;
        }
        if !bit(&paths[hi - 1], depth) {
            return hi;
        }
        let start = right_half_start(&paths[lo], depth);
        lo + paths[lo..hi].partition_point(|p| p < &start)
    }

    /// `_Updater.build`: the subtree at `depth` holding exactly the leaves paths[lo..hi].
    fn build(&mut self, depth: usize, paths: &[Hash], hashes: &[Hash], lo: usize, hi: usize) -> PyResult<Outcome> {
        let count = hi - lo;
        if count == 0 {
            return Ok((EMPTY_HASH, None));
        }
        if count == 1 {
            let record = node_record(LEAF_TAG, &paths[lo], &hashes[lo]);
            return Ok((sha256(&record), Some(record)));
        }
        if depth >= MAX_DEPTH {
            return Err(PyValueError::new_err("two distinct leaves share a full 256-bit path"));
        }
        let mid = Self::split(paths, depth, lo, hi);
        let left = self.build(depth + 1, paths, hashes, lo, mid)?;
        let right = self.build(depth + 1, paths, hashes, mid, hi)?;
        if let Some(record) = left.1 {
            self.write(node_position(depth + 1, &paths[lo]), Some(record));
        }
        if let Some(record) = right.1 {
            self.write(node_position(depth + 1, &paths[mid]), Some(record));
        }
        let record = node_record(INNER_TAG, &left.0, &right.0);
        let hash = sha256(&record);
        self.write(node_position(depth, &paths[lo]), Some(record));
        Ok((hash, None))
    }

    /// `_Updater.update`: apply changes paths[lo..hi] to the subtree at `position` whose record is `old`.
    #[allow(clippy::too_many_arguments)]
    fn update(&mut self, depth: usize, position: Vec<u8>, old: Option<Vec<u8>>, paths: &[Hash],
              hashes: &[Option<Hash>], lo: usize, hi: usize) -> PyResult<Outcome> {
        if let Some(old) = old.as_ref().filter(|o| o[0] == INNER_TAG) {
            return self.update_inner(depth, position, old.clone(), paths, hashes, lo, hi);
        }
        if hi - lo == 1 && old.as_ref().is_none_or(|o| o[1..33] == paths[lo]) {
            if old.is_some() {
                self.write(position, None); // provisional; overwritten if something lands here
            }
            return Ok(match &hashes[lo] {
                None => (EMPTY_HASH, None),
                Some(new_hash) => {
                    let record = node_record(LEAF_TAG, &paths[lo], new_hash);
                    (sha256(&record), Some(record))
                }
            });
        }
        let mut keep_paths: Vec<Hash> = paths[lo..hi].to_vec();
        let mut keep_hashes: Vec<Option<Hash>> = hashes[lo..hi].to_vec();
        if let Some(old) = &old {
            self.write(position, None); // provisional
            let old_path: Hash = old[1..33].try_into().unwrap();
            let at = keep_paths.partition_point(|p| p < &old_path);
            if at == keep_paths.len() || keep_paths[at] != old_path {
                keep_paths.insert(at, old_path);
                keep_hashes.insert(at, Some(old[33..65].try_into().unwrap()));
            }
        }
        let (live_paths, live_hashes): (Vec<Hash>, Vec<Hash>) = keep_paths
            .into_iter()
            .zip(keep_hashes)
            .filter_map(|(p, h)| h.map(|h| (p, h)))
            .unzip();
        self.build(depth, &live_paths, &live_hashes, 0, live_paths.len())
    }

    #[allow(clippy::too_many_arguments)]
    fn update_inner(&mut self, depth: usize, position: Vec<u8>, old: Vec<u8>, paths: &[Hash],
                    hashes: &[Option<Hash>], lo: usize, hi: usize) -> PyResult<Outcome> {
        if depth >= MAX_DEPTH {
            return Err(TreeCorrupt::new_err(format!("inner node stored at depth {depth}")));
        }
        let mid = Self::split(paths, depth, lo, hi);
        let old_left: Hash = old[1..33].try_into().unwrap();
        let old_right: Hash = old[33..65].try_into().unwrap();
        let child_depth = depth + 1;
        let mut left: Option<Outcome> = None; // None: untouched
        let mut right: Option<Outcome> = None;
        if lo < mid {
            let child_position = node_position(child_depth, &paths[lo]);
            let child = if old_left == EMPTY_HASH { None } else { self.read(&child_position)? };
            if child.is_none() && old_left != EMPTY_HASH {
                return Err(Self::missing(&child_position));
            }
            left = Some(self.update(child_depth, child_position, child, paths, hashes, lo, mid)?);
        }
        if mid < hi {
            let child_position = node_position(child_depth, &paths[mid]);
            let child = if old_right == EMPTY_HASH { None } else { self.read(&child_position)? };
            if child.is_none() && old_right != EMPTY_HASH {
                return Err(Self::missing(&child_position));
            }
            right = Some(self.update(child_depth, child_position, child, paths, hashes, mid, hi)?);
        }
        let left_hash = left.as_ref().map_or(old_left, |o| o.0);
        let right_hash = right.as_ref().map_or(old_right, |o| o.0);
        if left_hash == EMPTY_HASH || right_hash == EMPTY_HASH {
            self.write(position.clone(), None); // provisional
            if left_hash == right_hash {
                return Ok((EMPTY_HASH, None));
            }
            // One non-empty child: if it is a leaf, it moves up (compaction).
            let (survivor, survivor_right) = if right_hash == EMPTY_HASH { (&left, false) } else { (&right, true) };
            match survivor {
                None => {
                    let survivor_position = child_position(depth, &paths[lo], survivor_right);
                    let record = self.read(&survivor_position)?.ok_or_else(|| Self::missing(&survivor_position))?;
                    if record[0] == LEAF_TAG {
                        self.write(survivor_position, None);
                        return Ok((sha256(&record), Some(record)));
                    }
                }
                Some((hash, Some(record))) => return Ok((*hash, Some(record.clone()))),
                Some(_) => {}
            }
        }
        // This node stays inner; leaf children settle one level down.
        if let Some((_, Some(record))) = left {
            self.write(node_position(child_depth, &paths[lo]), Some(record));
        }
        if let Some((_, Some(record))) = right {
            self.write(node_position(child_depth, &paths[mid]), Some(record));
        }
        let record = node_record(INNER_TAG, &left_hash, &right_hash);
        let hash = sha256(&record);
        self.write(position, Some(record));
        Ok((hash, None))
    }
}

/// `update_tree(read_node, changes)`: (root, node writes as an ordered dict position -> record | None).
#[pyfunction]
pub fn update_tree<'py>(py: Python<'py>, read_node: Bound<'py, PyAny>, changes: &Bound<'py, PyDict>)
                        -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyDict>)> {
    let mut items: Vec<(Hash, Option<Hash>)> = Vec::with_capacity(changes.len());
    for (key, value) in changes.iter() {
        let path = sha256(key.cast::<PyBytes>()?.as_bytes());
        let value_hash = if value.is_none() { None } else { Some(sha256(value.cast::<PyBytes>()?.as_bytes())) };
        items.push((path, value_hash));
    }
    items.sort();
    let paths: Vec<Hash> = items.iter().map(|(p, _)| *p).collect();
    let hashes: Vec<Option<Hash>> = items.iter().map(|(_, h)| *h).collect();
    let root_position = node_position(0, &EMPTY_HASH);
    let mut updater = Updater { read_node, writes: Vec::new(), index: HashMap::new() };
    let root_record = updater.read(&root_position)?;
    let root = if paths.is_empty() {
        root_record.map_or(EMPTY_HASH, |r| sha256(&r))
    } else {
        let (root_hash, leaf) = updater.update(0, root_position.clone(), root_record, &paths, &hashes, 0, paths.len())?;
        if let Some(leaf) = leaf {
            updater.write(root_position, Some(leaf));
        }
        root_hash
    };
    let writes = PyDict::new(py);
    for (position, record) in &updater.writes {
        writes.set_item(PyBytes::new(py, position), record.as_ref().map(|r| PyBytes::new(py, r)))?;
    }
    Ok((PyBytes::new(py, &root), writes))
}
