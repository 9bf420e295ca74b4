//! The host functions a backend imports (`rtc:backend/state`, `rtc:backend/context`), as
//! `Backend._host_*` in rtc/vm/engine.py serve them: the same checks, the same fuel, charged
//! in the same order, the same trap texts.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::capi::{self, Val, ValUnion};
use crate::values::{lower_bytes, read_bytes};
use crate::vm::Limits;

pyo3::create_exception!(rtc_native, OutOfFuel, pyo3::exceptions::PyException, "A scan's meter ran out of fuel.");

pub(crate) struct CallState<'py> {
    pub(crate) py: Python<'py>,
    pub(crate) state: Bound<'py, PyAny>,
    pub(crate) height: u64,
    pub(crate) time_ms: u64,
    pub(crate) caller: &'py [u8],
    pub(crate) read_only: bool,
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>, // in key order, for scans
    pub(crate) order: Vec<Vec<u8>>,                        // first-write order, as they are applied
    pub(crate) host_error: Option<String>,
    pub(crate) failure: Option<PyErr>,
}

/// What the host functions share with `execute`: the limits and the call in flight.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) current: std::cell::Cell<*mut c_void>,
}

enum HostError {
    Trap(String),
    Failure(PyErr),
}

type HostResult = Result<(), HostError>;

fn trap<T>(reason: impl Into<String>) -> Result<T, HostError> {
    Err(HostError::Trap(reason.into()))
}

impl From<PyErr> for HostError {
    fn from(err: PyErr) -> Self {
        HostError::Failure(err)
    }
}

// -- fuel -------------------------------------------------------------------------------

fn get_fuel(ctx: *mut capi::wasmtime_context_t) -> Result<i64, HostError> {
    let mut fuel = 0u64;
    let error = unsafe { (capi::api().wasmtime_context_get_fuel)(ctx, &mut fuel) };
    if !error.is_null() {
        return Err(HostError::Failure(PyRuntimeError::new_err(capi::take_error_message(error))));
    }
    Ok(fuel as i64)
}

fn set_fuel(ctx: *mut capi::wasmtime_context_t, fuel: i64) -> HostResult {
    let error = unsafe { (capi::api().wasmtime_context_set_fuel)(ctx, fuel.max(0) as u64) };
    if !error.is_null() {
        return Err(HostError::Failure(PyRuntimeError::new_err(capi::take_error_message(error))));
    }
    Ok(())
}

/// `Backend._charge`: one host call that copies `nbytes` between guest and host.
fn charge(ctx: *mut capi::wasmtime_context_t, limits: &Limits, nbytes: usize) -> HostResult {
    let cost = limits.host_call_fuel + nbytes as i64 * limits.fuel_per_byte;
    let fuel = get_fuel(ctx)?;
    if fuel < cost {
        set_fuel(ctx, 0)?;
        return trap("out of fuel");
    }
    set_fuel(ctx, fuel - cost)
}

/// `_Meter`: a scan's fuel, read once, spent as the work is done, written back once.
/// It is also the callable the state's iterator charges each entry it steps over with.
#[pyclass(frozen)]
pub struct ScanMeter {
    fuel: AtomicI64,
    step_fuel: i64,
    byte_fuel: i64,
}

impl ScanMeter {
    fn spend(&self, cost: i64) -> bool {
        self.fuel.fetch_sub(cost, Ordering::Relaxed) - cost >= 0
    }
}

#[pymethods]
impl ScanMeter {
    fn __call__(&self, size: i64) -> PyResult<()> {
        if self.spend(self.step_fuel + size * self.byte_fuel) {
            Ok(())
        } else {
            Err(OutOfFuel::new_err("out of fuel"))
        }
    }
}

// -- host functions -------------------------------------------------------------------

unsafe fn key_arg(val: *const Val, limits: &Limits) -> Result<Vec<u8>, HostError> {
    let list = &(*val).of.list;
    if list.size > limits.max_key_bytes {
        return trap(format!("state key of {} bytes exceeds the limit of {}", list.size, limits.max_key_bytes));
    }
    Ok(read_bytes(list))
}

type HostFn = unsafe fn(&Limits, &mut CallState<'_>, *mut capi::wasmtime_context_t, *mut Val, *mut Val) -> HostResult;

unsafe fn host_get(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, args: *mut Val,
                   results: *mut Val) -> HostResult {
    let key = key_arg(args, limits)?;
    let value: Option<Vec<u8>> = match call.writes.get(&key) {
        Some(own) => own.clone(),
        None => {
            let got = call.state.call_method1("get", (PyBytes::new(call.py, &key),))?;
            if got.is_none() { None } else { Some(got.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes().to_vec()) }
        }
    };
    charge(ctx, limits, key.len() + value.as_ref().map_or(0, Vec::len))?;
    let out = &mut *results;
    out.kind = capi::K_OPTION;
    out.of.option = match value {
        None => std::ptr::null_mut(),
        Some(value) => {
            let mut payload = Val::empty();
            lower_bytes(&value, &mut payload);
            (capi::api().wasmtime_component_val_new)(&mut payload)
        }
    };
    Ok(())
}

unsafe fn write(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, key_val: *const Val,
                value_val: Option<*const Val>) -> HostResult {
    if call.read_only {
        return trap("a query cannot change state");
    }
    let key = key_arg(key_val, limits)?;
    let mut size = 0;
    if let Some(value_val) = value_val {
        size = (*value_val).of.list.size;
        if size > limits.max_value_bytes {
            return trap(format!("state value of {size} bytes exceeds the limit of {}", limits.max_value_bytes));
        }
    }
    let new = !call.writes.contains_key(&key);
    if new && call.writes.len() >= limits.max_writes {
        return trap(format!("a call may write at most {} keys", limits.max_writes));
    }
    charge(ctx, limits, key.len() + size)?;
    let value = value_val.map(|v| read_bytes(&(*v).of.list));
    if new {
        call.order.push(key.clone());
    }
    call.writes.insert(key, value);
    Ok(())
}

unsafe fn host_set(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, args: *mut Val,
                   _results: *mut Val) -> HostResult {
    write(limits, call, ctx, args, Some(args.add(1)))
}

unsafe fn host_remove(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, args: *mut Val,
                      _results: *mut Val) -> HostResult {
    write(limits, call, ctx, args, None)
}

unsafe fn host_scan(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, args: *mut Val,
                    results: *mut Val) -> HostResult {
    let start_list = &(*args).of.list;
    let bound = (*args.add(1)).of.option;
    let end_list = if bound.is_null() { None } else { Some(&(*bound).of.list) };
    let meter = Bound::new(call.py, ScanMeter {
        fuel: AtomicI64::new(get_fuel(ctx)?),
        step_fuel: limits.scan_step_fuel,
        byte_fuel: limits.scan_byte_fuel,
    })?;
    let sizes = start_list.size + end_list.map_or(0, |l| l.size);
    let settle = |m: &ScanMeter| set_fuel(ctx, m.fuel.load(Ordering::Relaxed));
    let charge_meter = |m: &ScanMeter, cost: i64| -> HostResult {
        if m.spend(cost) {
            Ok(())
        } else {
            set_fuel(ctx, 0)?;
            trap("out of fuel")
        }
    };
    charge_meter(meter.get(), limits.host_call_fuel + sizes as i64 * limits.fuel_per_byte)?;
    let start = read_bytes(start_list);
    let end = end_list.map(|l| read_bytes(l));
    let limit = (*args.add(2)).of.u32.min(limits.max_scan) as usize;
    let scanned = merged_scan(call, &meter, &start, end.as_deref(), limit, limits.max_scan_bytes);
    settle(meter.get())?; // what was read is paid for, also when the scan is refused
    let (entries, copied) = scanned?;
    charge_meter(meter.get(), entries.len() as i64 * limits.scan_entry_fuel + copied * limits.fuel_per_byte)?;
    settle(meter.get())?;
    let out = &mut *results;
    out.kind = capi::K_LIST;
    (capi::api().wasmtime_component_vallist_new_uninit)(&mut out.of.list, entries.len());
    for (i, (key, value)) in entries.iter().enumerate() {
        let item = out.of.list.data.add(i);
        (*item).kind = capi::K_TUPLE;
        (capi::api().wasmtime_component_valtuple_new_uninit)(&mut (*item).of.tuple, 2);
        let pair = (*item).of.tuple.data;
        lower_bytes(key, pair);
        lower_bytes(value, pair.add(1));
    }
    Ok(())
}

/// `engine._merged_scan`: the state's entries with the call's own writes laid over them,
/// each side read only as far as the answer needs, every entry stepped over charged.
fn merged_scan(call: &CallState<'_>, meter: &Bound<'_, ScanMeter>, start: &[u8], end: Option<&[u8]>, limit: usize,
               max_bytes: i64) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, i64), HostError> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut held = 0i64;
    if limit == 0 {
        return Ok((out, held));
    }
    let py = call.py;
    let upper = end.map(|e| e.to_vec());
    let mut own = match &upper {
        Some(e) if e.as_slice() <= start => call.writes.range(start.to_vec()..start.to_vec()),
        Some(e) => call.writes.range(start.to_vec()..e.clone()),
        None => call.writes.range(start.to_vec()..),
    }
    .peekable();
    let end_arg = match end {
        Some(e) => PyBytes::new(py, e).into_any(),
        None => py.None().into_bound(py),
    };
    let stored = call.state.call_method1("iterate", (PyBytes::new(py, start), end_arg, meter))?;
    let result = (|| -> Result<(), HostError> {
        let mut entry: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut done = false;
        while out.len() < limit {
            if entry.is_none() && !done {
                entry = next_entry(&stored)?;
                done = entry.is_none();
            }
            let own_first = matches!(own.peek(), Some((own_key, _))
                if entry.as_ref().is_none_or(|(k, _)| own_key.as_slice() <= k.as_slice()));
            let (key, value) = if own_first {
                let (own_key, own_value) = own.next().unwrap();
                let size = own_key.len() + own_value.as_ref().map_or(0, Vec::len);
                let m = meter.get();
                if !m.spend(m.step_fuel + size as i64 * m.byte_fuel) {
                    return trap("out of fuel");
                }
                if entry.as_ref().is_some_and(|(k, _)| k == own_key) {
                    entry = None; // the stored entry it overwrites or removes
                }
                match own_value {
                    None => continue,
                    Some(value) => (own_key.clone(), value.clone()),
                }
            } else {
                match entry.take() {
                    Some(stored_entry) => stored_entry,
                    None => break,
                }
            };
            held += (key.len() + value.len()) as i64;
            if held > max_bytes {
                return trap(format!(
                    "the first {} entries of a scan hold {held} bytes, over the limit of {max_bytes} bytes per scan \
                     (max_scan_bytes); scan fewer entries at a time",
                    out.len() + 1
                ));
            }
            out.push((key, value));
        }
        Ok(())
    })();
    if let Ok(close) = stored.getattr("close") {
        close.call0()?; // the store's cursor goes now
    }
    result.map(|()| (out, held))
}

fn next_entry(stored: &Bound<'_, PyAny>) -> Result<Option<(Vec<u8>, Vec<u8>)>, HostError> {
    let py = stored.py();
    match unsafe { Bound::from_owned_ptr_or_opt(py, pyo3::ffi::PyIter_Next(stored.as_ptr())) } {
        Some(item) => {
            let pair = item.cast::<PyTuple>().map_err(PyErr::from)?;
            let key = pair.get_item(0)?.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes().to_vec();
            let value = pair.get_item(1)?.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes().to_vec();
            Ok(Some((key, value)))
        }
        None => match PyErr::take(py) {
            None => Ok(None),
            Some(err) if err.is_instance_of::<OutOfFuel>(py) => trap("out of fuel"),
            Some(err) => Err(HostError::Failure(err)),
        },
    }
}

unsafe fn host_block(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, _args: *mut Val,
                     results: *mut Val) -> HostResult {
    charge(ctx, limits, 0)?;
    let out = &mut *results;
    out.kind = capi::K_RECORD;
    (capi::api().wasmtime_component_valrecord_new_uninit)(&mut out.of.record, 2);
    for (i, (name, value)) in [(&b"height"[..], call.height), (&b"time-ms"[..], call.time_ms)].into_iter().enumerate() {
        let entry = out.of.record.data.add(i);
        (*entry).name = capi::new_bytes(name);
        (*entry).val = Val { kind: capi::K_U64, of: ValUnion { u64: value } };
    }
    Ok(())
}

unsafe fn host_caller(limits: &Limits, call: &mut CallState<'_>, ctx: *mut capi::wasmtime_context_t, _args: *mut Val,
                      results: *mut Val) -> HostResult {
    charge(ctx, limits, call.caller.len())?;
    lower_bytes(call.caller, results);
    Ok(())
}

/// The C callback for every host function: the call in flight from `env`, then `func`; a
/// trap or a failure of the node becomes a trap of the guest (engine.py's `_host_callback`).
unsafe fn dispatch(env: *mut c_void, ctx: *mut capi::wasmtime_context_t, args: *mut Val, results: *mut Val,
                   name: &str, func: HostFn) -> *mut capi::wasmtime_error_t {
    let shared = &*(env as *const Shared);
    let current = shared.current.get();
    if current.is_null() {
        return capi::trap_error("host function called outside a call");
    }
    let call = &mut *(current as *mut CallState<'static>);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| func(&shared.limits, call, ctx, args, results)));
    let reason = match outcome {
        Ok(Ok(())) => return std::ptr::null_mut(),
        Ok(Err(HostError::Trap(reason))) => {
            if call.host_error.is_none() {
                call.host_error = Some(reason.clone());
            }
            reason
        }
        Ok(Err(HostError::Failure(err))) => {
            call.failure = Some(err);
            format!("host failure in {name}")
        }
        Err(_) => {
            call.failure = Some(PyRuntimeError::new_err(format!("rtc_native panicked in host function {name}")));
            format!("host failure in {name}")
        }
    };
    capi::trap_error(&reason)
}

macro_rules! callback {
    ($cname:ident, $name:literal, $func:ident) => {
        pub(crate) unsafe extern "C" fn $cname(env: *mut c_void, ctx: *mut capi::wasmtime_context_t,
                                    _ty: *const capi::wasmtime_component_func_type_t, args: *mut Val, _nargs: usize,
                                    results: *mut Val, _nresults: usize) -> *mut capi::wasmtime_error_t {
            dispatch(env, ctx, args, results, $name, $func)
        }
    };
}

callback!(cb_get, "get", host_get);
callback!(cb_set, "set", host_set);
callback!(cb_remove, "remove", host_remove);
callback!(cb_scan, "scan", host_scan);
callback!(cb_block, "block", host_block);
callback!(cb_caller, "caller", host_caller);

