//! A block's client calls: session ordering, execution and the records they leave, as
//! `rtc.sessions.Sessions` and `ClusterApp._run` do it, over the block's state overlay.
//!
//! Python still owns the overlay (its Merkle tree and the store under it); this reads and
//! writes through it, so every other part of the node sees exactly what the reference would
//! have written, in the same order. The records are encoded here, byte for byte as
//! `canonical_json` (orjson, sorted keys) encodes them; a backend's result value, arbitrary
//! JSON, is encoded by orjson itself.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::vm::NativeVm;

const BACKEND_PREFIX: &[u8] = b"k/";
const SESSION_PREFIX: &[u8] = b"s/";
const QUEUE_PREFIX: &[u8] = b"q/";
const RESULT_PREFIX: &[u8] = b"r/";
const DEADLINE_PREFIX: &[u8] = b"d/";
const END_BLOCK_WRITE_BUDGET: u64 = 10_000; // sessions.ordering.END_BLOCK_WRITE_BUDGET
const CLOSE: u8 = 1; // Kind.CLOSE

fn joined(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn queue_key(session: &[u8], counter: u64) -> Vec<u8> {
    joined(&[QUEUE_PREFIX, session, &counter.to_be_bytes()])
}

fn result_key(session: &[u8], counter: u64) -> Vec<u8> {
    joined(&[RESULT_PREFIX, session, &counter.to_be_bytes()])
}

fn deadline_key(deadline: u64, session: &[u8]) -> Vec<u8> {
    joined(&[DEADLINE_PREFIX, &deadline.to_be_bytes(), session])
}

/// `tx_digest`: CometBFT's name of a transaction, upper-case hex of its SHA-256.
pub fn tx_digest(tx: &[u8]) -> String {
    Sha256::digest(tx).iter().map(|b| format!("{b:02X}")).collect()
}

/// A JSON string as orjson writes it.
fn json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

fn json_optional_u64(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

// -- records ------------------------------------------------------------------------------

/// `SessionRecord`.
#[derive(Deserialize, Clone)]
#[serde(default)]
struct SessionRecord {
    next: u64,
    status: String,
    reason: Option<String>,
    buffered: u64,
    gap_deadline: Option<u64>,
    idle_deadline: Option<u64>,
    last_height: u64,
}

impl Default for SessionRecord {
    fn default() -> Self {
        SessionRecord {
            next: 0,
            status: "open".into(),
            reason: None,
            buffered: 0,
            gap_deadline: None,
            idle_deadline: None,
            last_height: 0,
        }
    }
}

impl SessionRecord {
    fn open(&self) -> bool {
        self.status == "open"
    }

    fn deadlines(&self) -> [Option<u64>; 2] {
        [self.gap_deadline, self.idle_deadline]
    }

    /// canonical_json(asdict(record)): the fields in sorted order.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(format!("{{\"buffered\":{},\"gap_deadline\":", self.buffered).as_bytes());
        json_optional_u64(&mut out, self.gap_deadline);
        out.extend_from_slice(b",\"idle_deadline\":");
        json_optional_u64(&mut out, self.idle_deadline);
        out.extend_from_slice(format!(",\"last_height\":{},\"next\":{},\"reason\":", self.last_height, self.next).as_bytes());
        match &self.reason {
            Some(reason) => json_string(&mut out, reason),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"status\":");
        json_string(&mut out, &self.status);
        out.push(b'}');
        out
    }
}

/// `ResultRecord`, before the block stamps it with its height and transaction.
enum Record {
    Ok { value: Vec<u8>, fuel: u64 }, // value: canonical JSON
    Closed,
    Error { error: String, fuel: u64 },
    Queued { reason: String },
    Skipped { reason: String },
}

impl Record {
    fn status(&self) -> &'static str {
        match self {
            Record::Ok { .. } | Record::Closed => "ok",
            Record::Error { .. } => "error",
            Record::Queued { .. } => "queued",
            Record::Skipped { .. } => "skipped",
        }
    }

    /// `ResultRecord.encoded` of the record stamped with `height` and `tx`.
    fn encode(&self, height: u64, tx: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        let stamp = |out: &mut Vec<u8>| {
            out.extend_from_slice(format!("\"height\":{height},").as_bytes());
        };
        let tail = |out: &mut Vec<u8>, status: &str| {
            out.extend_from_slice(b"\"status\":");
            json_string(out, status);
            out.extend_from_slice(b",\"tx\":");
            json_string(out, tx);
        };
        out.push(b'{');
        match self {
            Record::Ok { value, fuel } => {
                out.extend_from_slice(format!("\"fuel\":{fuel},").as_bytes());
                stamp(&mut out);
                tail(&mut out, "ok");
                out.extend_from_slice(b",\"value\":");
                out.extend_from_slice(value);
            }
            Record::Closed => {
                out.extend_from_slice(b"\"closed\":true,");
                stamp(&mut out);
                tail(&mut out, "ok");
                out.extend_from_slice(b",\"value\":null");
            }
            Record::Error { error, fuel } => {
                out.extend_from_slice(b"\"error\":");
                json_string(&mut out, error);
                out.extend_from_slice(format!(",\"fuel\":{fuel},").as_bytes());
                stamp(&mut out);
                tail(&mut out, "error");
            }
            Record::Queued { reason } | Record::Skipped { reason } => {
                stamp(&mut out);
                out.extend_from_slice(b"\"reason\":");
                json_string(&mut out, reason);
                out.push(b',');
                tail(&mut out, self.status());
            }
        }
        out.push(b'}');
        out
    }

    fn error(&self) -> Option<&str> {
        match self {
            Record::Error { error, .. } => Some(error),
            _ => None,
        }
    }

    fn fuel(&self) -> u64 {
        match self {
            Record::Ok { fuel, .. } | Record::Error { fuel, .. } => *fuel,
            _ => 0,
        }
    }
}

/// A result as the block wrote it: (counter, status, encoded record, error, fuel).
type Written = (u64, &'static str, Vec<u8>, Option<String>, u64);

/// What `Sessions` refuses: the rule's code and the message.
struct Refused(i64, String);

/// The fields of an envelope the block needs (`rtc.protocol.Envelope`).
struct Envelope {
    kind: u8,
    session_key: Vec<u8>,
    counter: u64,
    digest: String,
    client: Vec<u8>,
    raw: Vec<u8>,
}

impl Envelope {
    /// A queued envelope read back from state: it was decoded and verified when it was queued.
    fn decode(raw: Vec<u8>) -> PyResult<Envelope> {
        if raw.len() < 65 {
            return Err(PyValueError::new_err("a queued envelope in state is truncated"));
        }
        Ok(Envelope {
            kind: raw[4],
            session_key: raw[5..53].to_vec(),
            counter: u64::from_be_bytes(raw[53..61].try_into().unwrap()),
            digest: tx_digest(&raw),
            client: raw[5..37].to_vec(),
            raw,
        })
    }
}

// -- the block -------------------------------------------------------------------------

/// One block's client calls (`Sessions` with `ClusterApp._run` as its runner).
///
/// `overlay` is the block's `BlockOverlay` (get/set/delete/scan), `state` the backend's view
/// of it (`BackendState`), `prepared_for(envelope_digest, raw)` gives a call's checked
/// arguments as `(entry_id, args)` or raises `tx_error` (whose text becomes the record's error).
#[pyclass(unsendable)]
pub struct BlockCalls {
    vm: Py<NativeVm>,
    overlay: Py<PyAny>,
    state: Py<PyAny>,
    prepared_for: Py<PyAny>,
    tx_error: Py<PyAny>,
    dumps: Py<PyAny>,
    sort_keys: Py<PyAny>,
    height: u64,
    time_ms: u64,
    max_buffered: u64,
    gap_timeout: u64,
    idle_expiry: u64,
    max_result_bytes: u64,
    codes: (i64, i64, i64), // DUPLICATE, SESSION_ENDED, TOO_EARLY
    /// Fuel the block's calls burned, against the cluster's per-block budget (`BlockFuel`).
    #[pyo3(get)]
    fuel_spent: u64,
    /// The fuel each entry point (by id) last burned in this block, for PrepareProposal's guess.
    #[pyo3(get)]
    fuel_seen: BTreeMap<usize, u64>,
}

#[pymethods]
impl BlockCalls {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(py: Python<'_>, vm: Py<NativeVm>, overlay: Py<PyAny>, state: Py<PyAny>, prepared_for: Py<PyAny>,
           tx_error: Py<PyAny>, height: u64, time_ms: u64, rules: (u64, u64, u64), max_result_bytes: u64,
           codes: (i64, i64, i64)) -> PyResult<BlockCalls> {
        let orjson = py.import("orjson")?;
        Ok(BlockCalls {
            vm,
            overlay,
            state,
            prepared_for,
            tx_error,
            dumps: orjson.getattr("dumps")?.unbind(),
            sort_keys: orjson.getattr("OPT_SORT_KEYS")?.unbind(),
            height,
            time_ms,
            max_buffered: rules.0,
            gap_timeout: rules.1,
            idle_expiry: rules.2,
            max_result_bytes,
            codes,
            fuel_spent: 0,
            fuel_seen: BTreeMap::new(),
        })
    }

    /// `Sessions.deliver(envelope, height, run)`: (code, message) when refused (nothing written),
    /// else the results written, the transaction's own first.
    #[allow(clippy::too_many_arguments)]
    fn deliver<'py>(&mut self, py: Python<'py>, kind: u8, session_key: Vec<u8>, counter: u64, digest: String,
                    client: Vec<u8>, raw: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let envelope = Envelope { kind, session_key, counter, digest, client, raw };
        match self.deliver_envelope(py, envelope)? {
            Err(Refused(code, message)) => Ok((code, message).into_pyobject(py)?.into_any()),
            Ok(written) => Ok(PyList::new(py, written.into_iter().map(|w| written_tuple(py, w)))?.into_any()),
        }
    }

    /// `Sessions.end_block(height)`: [(session key, counter, status)] of the results written.
    fn end_block<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let height = self.height;
        let per_session = 2 * self.max_buffered + 4;
        let limit = (END_BLOCK_WRITE_BUDGET / per_session).max(1);
        let start = DEADLINE_PREFIX.to_vec();
        let end = joined(&[DEADLINE_PREFIX, &(height + 1).to_be_bytes()]);
        let out = PyList::empty(py);
        for (index_key, _) in self.scan(py, &start, &end, limit)? {
            let key = index_key[DEADLINE_PREFIX.len() + 8..].to_vec();
            let mut record = match self.record(py, &key)? {
                Some(record) if record.open() => record,
                _ => {
                    self.delete(py, &index_key)?;
                    continue;
                }
            };
            let old = record.deadlines();
            if record.gap_deadline.is_some_and(|d| d <= height) {
                record.status = "failed".into();
                record.reason = Some(format!("counter {} did not arrive within {} blocks", record.next, self.gap_timeout));
            } else if record.idle_deadline.is_some_and(|d| d <= height) {
                let active_until = record.last_height + self.idle_expiry;
                if active_until > height {
                    record.idle_deadline = Some(active_until); // used since it was indexed: move it
                    self.save(py, &key, &record, old)?;
                    continue;
                }
                record.status = "expired".into();
                record.reason = Some(format!("no activity for {} blocks", self.idle_expiry));
            } else {
                continue;
            }
            for (counter, status, ..) in self.skip_waiting(py, &key, &mut record)? {
                out.append((PyBytes::new(py, &key), counter, status))?;
            }
            record.gap_deadline = None;
            record.idle_deadline = None;
            self.save(py, &key, &record, old)?;
        }
        Ok(out)
    }
}

fn written_tuple<'py>(py: Python<'py>, (counter, status, encoded, error, fuel): Written) -> Bound<'py, PyTuple> {
    (counter, status, PyBytes::new(py, &encoded), error, fuel).into_pyobject(py).unwrap()
}

impl BlockCalls {
    // -- the overlay ---------------------------------------------------------------------

    fn get(&self, py: Python<'_>, key: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let value = self.overlay.bind(py).call_method1("get", (PyBytes::new(py, key),))?;
        if value.is_none() {
            return Ok(None);
        }
        Ok(Some(value.cast::<PyBytes>()?.as_bytes().to_vec()))
    }

    fn set(&self, py: Python<'_>, key: &[u8], value: &[u8]) -> PyResult<()> {
        self.overlay.bind(py).call_method1("set", (PyBytes::new(py, key), PyBytes::new(py, value)))?;
        Ok(())
    }

    fn delete(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        self.overlay.bind(py).call_method1("delete", (PyBytes::new(py, key),))?;
        Ok(())
    }

    fn scan(&self, py: Python<'_>, start: &[u8], end: &[u8], limit: u64) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self.overlay.bind(py).call_method1("scan", (PyBytes::new(py, start), PyBytes::new(py, end), limit))?;
        let mut out = Vec::new();
        for entry in entries.try_iter()? {
            let entry = entry?;
            let key = entry.get_item(0)?.cast::<PyBytes>()?.as_bytes().to_vec();
            let value = entry.get_item(1)?.cast::<PyBytes>()?.as_bytes().to_vec();
            out.push((key, value));
        }
        Ok(out)
    }

    // -- sessions ------------------------------------------------------------------------

    fn record(&self, py: Python<'_>, session: &[u8]) -> PyResult<Option<SessionRecord>> {
        match self.get(py, &joined(&[SESSION_PREFIX, session]))? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|exc| PyValueError::new_err(format!("malformed session record: {exc}"))),
        }
    }

    /// `Sessions._admit`: the admission rules.
    fn admit(&self, py: Python<'_>, envelope: &Envelope, record: Option<&SessionRecord>) -> PyResult<Result<(), Refused>> {
        let (duplicate, session_ended, too_early) = self.codes;
        let next = record.map_or(0, |r| r.next);
        let k = envelope.counter;
        if let Some(record) = record.filter(|r| !r.open()) {
            let reason = record.reason.as_deref().unwrap_or("None");
            return Ok(Err(Refused(session_ended, format!("session is {}: {reason}", record.status))));
        }
        if k < next {
            return Ok(Err(Refused(duplicate, format!("counter {k} of this session was already used (next is {next})"))));
        }
        if k > next {
            if self.get(py, &queue_key(&envelope.session_key, k))?.is_some() {
                return Ok(Err(Refused(duplicate, format!("counter {k} is already waiting in this session"))));
            }
            if k - next > self.max_buffered {
                return Ok(Err(Refused(too_early, format!(
                    "counter {k} is more than {} ahead of the next one ({next})", self.max_buffered))));
            }
            if let Some(record) = record.filter(|r| r.buffered >= self.max_buffered) {
                return Ok(Err(Refused(too_early, format!(
                    "{} calls of this session already wait for counter {next}", record.buffered))));
            }
        }
        Ok(Ok(()))
    }

    fn deliver_envelope(&mut self, py: Python<'_>, envelope: Envelope) -> PyResult<Result<Vec<Written>, Refused>> {
        let height = self.height;
        let key = envelope.session_key.clone();
        let stored = self.record(py, &key)?;
        if let Err(refused) = self.admit(py, &envelope, stored.as_ref())? {
            return Ok(Err(refused));
        }
        let mut record = stored.unwrap_or(SessionRecord { last_height: height, ..Default::default() });
        let old = record.deadlines();
        let mut written = Vec::new();
        if envelope.counter > record.next {
            self.set(py, &queue_key(&key, envelope.counter), &envelope.raw)?;
            record.buffered += 1;
            if record.gap_deadline.is_none() {
                record.gap_deadline = Some(height + self.gap_timeout);
            }
            let queued = Record::Queued { reason: format!("waits for counter {}", record.next) };
            written.push(self.write_result(py, &key, envelope.counter, &queued, &envelope.digest)?);
        } else {
            written.extend(self.run_chain(py, envelope, &mut record)?);
        }
        record.last_height = height;
        if !record.open() {
            record.idle_deadline = None;
        } else if record.idle_deadline.is_none() {
            record.idle_deadline = Some(height + self.idle_expiry);
        }
        self.save(py, &key, &record, old)?;
        Ok(Ok(written))
    }

    fn run_chain(&mut self, py: Python<'_>, envelope: Envelope, record: &mut SessionRecord) -> PyResult<Vec<Written>> {
        let key = envelope.session_key.clone();
        let mut written = Vec::new();
        let mut current = Some(envelope);
        while let Some(envelope) = current.take() {
            let k = envelope.counter;
            let outcome = if envelope.kind == CLOSE {
                record.status = "closed".into();
                record.reason = Some(format!("closed by the client at counter {k}"));
                Record::Closed
            } else {
                let outcome = self.run(py, &envelope)?;
                if let Some(error) = outcome.error() {
                    record.status = "failed".into();
                    record.reason = Some(format!("call {k} failed: {error}"));
                }
                outcome
            };
            written.push(self.write_result(py, &key, k, &outcome, &envelope.digest)?);
            record.next = k.checked_add(1).ok_or_else(|| PyValueError::new_err("counter overflow"))?;
            if record.open() {
                let waiting_key = queue_key(&key, k + 1);
                if let Some(waiting) = self.get(py, &waiting_key)? {
                    self.delete(py, &waiting_key)?;
                    record.buffered -= 1;
                    current = Some(Envelope::decode(waiting)?);
                }
            }
        }
        if !record.open() {
            written.extend(self.skip_waiting(py, &key, record)?);
        }
        record.gap_deadline = if record.buffered > 0 { Some(self.height + self.gap_timeout) } else { None };
        Ok(written)
    }

    /// `Sessions._skip_waiting`: a session that ended takes its waiting calls with it.
    fn skip_waiting(&self, py: Python<'_>, key: &[u8], record: &mut SessionRecord) -> PyResult<Vec<Written>> {
        let start = joined(&[QUEUE_PREFIX, key]);
        let end = joined(&[QUEUE_PREFIX, key, &[0xff; 9]]);
        let mut written = Vec::new();
        for (queued_key, queued_tx) in self.scan(py, &start, &end, self.max_buffered + 1)? {
            let counter = u64::from_be_bytes(queued_key[queued_key.len() - 8..].try_into().unwrap());
            self.delete(py, &queued_key)?;
            let skipped = Record::Skipped { reason: record.reason.clone().unwrap_or_default() };
            written.push(self.write_result(py, key, counter, &skipped, &tx_digest(&queued_tx))?);
            record.next = record.next.max(counter + 1); // never reuse a counter that was seen
        }
        record.buffered = 0;
        Ok(written)
    }

    fn write_result(&self, py: Python<'_>, key: &[u8], counter: u64, record: &Record, tx: &str) -> PyResult<Written> {
        let encoded = record.encode(self.height, tx);
        self.set(py, &result_key(key, counter), &encoded)?;
        Ok((counter, record.status(), encoded, record.error().map(str::to_string), record.fuel()))
    }

    fn save(&self, py: Python<'_>, key: &[u8], record: &SessionRecord, old: [Option<u64>; 2]) -> PyResult<()> {
        let new = record.deadlines();
        for deadline in old.into_iter().flatten() {
            if !new.contains(&Some(deadline)) {
                self.delete(py, &deadline_key(deadline, key))?;
            }
        }
        for deadline in new.into_iter().flatten() {
            if !old.contains(&Some(deadline)) {
                self.set(py, &deadline_key(deadline, key), b"")?;
            }
        }
        self.set(py, &joined(&[SESSION_PREFIX, key]), &record.encode())
    }

    // -- a call ------------------------------------------------------------------------

    /// `ClusterApp._run`: execute one call whose turn has come; its writes apply only if it succeeds.
    fn run(&mut self, py: Python<'_>, envelope: &Envelope) -> PyResult<Record> {
        let prepared = match self.prepared_for.bind(py).call1((envelope.digest.as_str(), PyBytes::new(py, &envelope.raw))) {
            Ok(prepared) => prepared,
            Err(err) if err.is_instance(py, self.tx_error.bind(py)) => {
                return Ok(Record::Error { error: err.value(py).str()?.to_string(), fuel: 0 });
            }
            Err(err) => return Err(err),
        };
        let entry: usize = prepared.get_item(0)?.extract()?;
        let args = prepared.get_item(1)?;
        let vm = self.vm.bind(py).borrow();
        let outcome = vm.run_call(py, entry, &args, self.state.bind(py).clone(), self.height, self.time_ms,
                                  &envelope.client)?;
        self.fuel_spent += outcome.fuel_used;
        self.fuel_seen.insert(entry, outcome.fuel_used);
        if !outcome.ok {
            return Ok(Record::Error { error: outcome.error.unwrap_or_default(), fuel: outcome.fuel_used });
        }
        let value = match &outcome.value {
            None => b"null".to_vec(),
            Some(value) => self.dumps.bind(py).call1((value, self.sort_keys.bind(py)))?.cast::<PyBytes>()?.as_bytes().to_vec(),
        };
        // `ResultRecord.result_bytes`: the record without its stamp, `{"fuel":F,"status":"ok","value":V}`,
        // that is 32 bytes besides F and V
        let size = 32 + outcome.fuel_used.to_string().len() + value.len();
        let record = Record::Ok { value, fuel: outcome.fuel_used };
        if size as u64 > self.max_result_bytes {
            let error = format!("result of {size} bytes exceeds the limit of {} bytes", self.max_result_bytes);
            return Ok(Record::Error { error, fuel: outcome.fuel_used });
        }
        for (key, value) in &outcome.writes {
            let state_key = joined(&[BACKEND_PREFIX, key]);
            match value {
                None => self.delete(py, &state_key)?,
                Some(value) => self.set(py, &state_key, value)?,
            }
        }
        Ok(record)
    }
}
