//! One entry-point call, as `rtc.vm.engine.Backend.execute` makes it, without the interpreter
//! in the way: the same store limits and fuel, the same host functions charging the same
//! fuel in the same order (host.rs), the same trap reasons, and the same result bound
//! (values.rs).
//!
//! The reference is the specification; every rule here names the Python it mirrors.

use std::collections::BTreeMap;
use std::ffi::c_void;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::capi::{self, Api, Val};
use crate::host::{self, CallState, Shared};
use crate::types::Ty;
use crate::values::{lift_json, lower, TooLarge};

pyo3::create_exception!(rtc_native, HostFailed, pyo3::exceptions::PyException,
    "The node failed while serving a call; its cause is the exception.");

#[derive(Clone)]
pub struct Limits {
    pub(crate) fuel: u64,
    pub(crate) query_fuel: u64,
    pub(crate) max_result_bytes: i64,
    pub(crate) query_result_bytes: i64,
    pub(crate) store_limits: [i64; 5],
    pub(crate) max_key_bytes: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) max_writes: usize,
    pub(crate) max_scan: u32,
    pub(crate) max_scan_bytes: i64,
    pub(crate) host_call_fuel: i64,
    pub(crate) fuel_per_byte: i64,
    pub(crate) scan_entry_fuel: i64,
    pub(crate) scan_step_fuel: i64,
    pub(crate) scan_byte_fuel: i64,
}

impl Limits {
    fn from_py(d: &Bound<'_, PyDict>) -> PyResult<Limits> {
        let get = |name: &str| -> PyResult<i64> {
            d.get_item(name)?
                .ok_or_else(|| PyTypeError::new_err(format!("limits lack {name}")))?
                .extract()
        };
        Ok(Limits {
            fuel: get("fuel")? as u64,
            query_fuel: get("query_fuel")? as u64,
            max_result_bytes: get("max_result_bytes")?,
            query_result_bytes: get("query_result_bytes")?,
            store_limits: [
                get("memory_bytes_each")?,
                get("table_elements")?,
                get("instances")?,
                get("tables")?,
                get("memories")?,
            ],
            max_key_bytes: get("max_key_bytes")? as usize,
            max_value_bytes: get("max_value_bytes")? as usize,
            max_writes: get("max_writes")? as usize,
            max_scan: get("max_scan")? as u32,
            max_scan_bytes: get("max_scan_bytes")?,
            host_call_fuel: get("host_call_fuel")?,
            fuel_per_byte: get("fuel_per_byte")?,
            scan_entry_fuel: get("scan_entry_fuel")?,
            scan_step_fuel: get("scan_step_fuel")?,
            scan_byte_fuel: get("scan_byte_fuel")?,
        })
    }
}

struct Entry {
    index: *const capi::wasmtime_component_export_index_t,
    params: Vec<Ty>,
    result: Option<(Ty, i64)>, // the type and its shortest JSON
    read_only: bool,
}

/// The call in flight, reached by the host functions (engine.py's `_Call`).
// -- trap reasons ---------------------------------------------------------------------


/// `engine.trap_reason`: short and deterministic, never a backtrace. `reasons` is the
/// reference's table (`engine._REASONS`): what a message containing each needle is called.
pub fn trap_reason(message: &str, host_error: Option<&str>, reasons: &[(String, String)]) -> String {
    if let Some(reason) = host_error {
        return reason.to_string();
    }
    let lowered = message.to_lowercase();
    for (needle, reason) in reasons {
        if lowered.contains(needle.as_str()) {
            return reason.to_string();
        }
    }
    // Python's str.splitlines and str.strip, exactly: the message can carry guest-chosen text.
    let last = message
        .trim_matches(py_space)
        .split_inclusive(py_line_break)
        .map(|line| line.trim_end_matches(py_line_break).trim_matches(py_space))
        .filter(|line| !line.is_empty())
        .last()
        .unwrap_or("trap");
    // re.sub(r"0x[0-9a-f]+", "0x…", last)
    let mut out = String::with_capacity(last.len());
    let bytes = last.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'0' && bytes.get(i + 1) == Some(&b'x')
            && bytes.get(i + 2).is_some_and(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            let mut j = i + 2;
            while j < bytes.len() && (bytes[j].is_ascii_digit() || (b'a'..=b'f').contains(&bytes[j])) {
                j += 1;
            }
            out.push_str("0x…");
            i = j;
        } else {
            let ch = last[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out.chars().take(200).collect()
}

/// Python's str.isspace.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The line boundaries of Python's str.splitlines.
fn py_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

// -- the backend ------------------------------------------------------------------------

/// A backend's entry points, run through wasmtime's C API with host functions in Rust.
///
/// It borrows the engine, the compiled component and the export indices of the Python
/// `Backend` it was made from, and holds that object so they outlive it.
#[pyclass(unsendable)]
pub struct NativeVm {
    api: &'static Api,
    engine: *mut capi::wasm_engine_t,
    component: *const capi::wasmtime_component_t,
    linker: *mut capi::wasmtime_component_linker_t,
    shared: Box<Shared>,
    entries: Vec<Entry>,
    reasons: Vec<(String, String)>,
    dumps: Py<PyAny>,
    _owner: Py<PyAny>,
}

fn check(error: *mut capi::wasmtime_error_t) -> PyResult<()> {
    if error.is_null() {
        Ok(())
    } else {
        Err(PyRuntimeError::new_err(capi::take_error_message(error)))
    }
}

#[pymethods]
impl NativeVm {
    /// `entries`: (export index address, parameter types, result type or None, the result's
    /// shortest JSON, read_only) per entry point; `interfaces`: the state and context
    /// interface names the host functions are defined under; `reasons`: the trap reasons.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(py: Python<'_>, library: &str, owner: Py<PyAny>, engine: usize, component: usize,
           entries: &Bound<'_, PyAny>, limits: &Bound<'_, PyDict>, interfaces: (String, String),
           reasons: Vec<(String, String)>) -> PyResult<NativeVm> {
        let api = capi::load(library).map_err(PyRuntimeError::new_err)?;
        let mut parsed = Vec::new();
        for item in entries.try_iter()? {
            let item = item?;
            let params = item.get_item(1)?.try_iter()?.map(|p| Ty::from_py(&p?)).collect::<PyResult<Vec<_>>>()?;
            let result_desc = item.get_item(2)?;
            let result = if result_desc.is_none() {
                None
            } else {
                Some((Ty::from_py(&result_desc)?, item.get_item(3)?.extract()?))
            };
            parsed.push(Entry {
                index: item.get_item(0)?.extract::<usize>()? as *const _,
                params,
                result,
                read_only: item.get_item(4)?.extract()?,
            });
        }
        let shared = Box::new(Shared { limits: Limits::from_py(limits)?, current: std::cell::Cell::new(std::ptr::null_mut()) });
        let engine = engine as *mut capi::wasm_engine_t;
        let linker = unsafe { (api.wasmtime_component_linker_new)(engine) };
        let vm = NativeVm {
            api,
            engine,
            component: component as *const _,
            linker,
            shared,
            entries: parsed,
            reasons,
            dumps: py.import("orjson")?.getattr("dumps")?.unbind(),
            _owner: owner,
        };
        vm.define_host_functions(&interfaces.0, &interfaces.1)?;
        Ok(vm)
    }

    /// Run entry `entry` on `args` (checked values) against `state` (get/iterate, as
    /// rtc.vm.StateView); returns (ok, value, error, fuel_used, writes in first-write order).
    /// Raises HostFailed (its cause the node's own exception) when the host failed.
    #[allow(clippy::too_many_arguments)]
    fn execute<'py>(&self, py: Python<'py>, entry: usize, args: &Bound<'py, PyAny>, state: Bound<'py, PyAny>,
                    height: u64, time_ms: u64, caller: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyTuple>> {
        let outcome = self.run_call(py, entry, args, state, height, time_ms, caller.as_bytes())?;
        let writes = PyDict::new(py);
        for (key, value) in &outcome.writes {
            writes.set_item(PyBytes::new(py, key), value.as_ref().map(|v| PyBytes::new(py, v)))?;
        }
        let value = outcome.value.unwrap_or_else(|| py.None().into_bound(py));
        (outcome.ok, value, outcome.error, outcome.fuel_used, writes).into_pyobject(py)
    }
}

/// What a call gave (engine.py's `CallOutcome`): `writes` in first-write order.
pub struct Outcome<'py> {
    pub ok: bool,
    pub value: Option<Bound<'py, PyAny>>,
    pub error: Option<String>,
    pub fuel_used: u64,
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl NativeVm {
    /// `Backend.execute`, step for step.
    #[allow(clippy::too_many_arguments)]
    pub fn run_call<'py>(&self, py: Python<'py>, entry: usize, args: &Bound<'py, PyAny>, state: Bound<'py, PyAny>,
                         height: u64, time_ms: u64, caller: &[u8]) -> PyResult<Outcome<'py>> {
        let entry = self.entries.get(entry).ok_or_else(|| PyTypeError::new_err("no such entry point"))?;
        let limits = &self.shared.limits;
        let (fuel, result_limit, limit_name) = if entry.read_only {
            (limits.query_fuel, limits.query_result_bytes, "query_result_bytes")
        } else {
            (limits.fuel, limits.max_result_bytes, "max_result_bytes")
        };
        let mut call = CallState {
            py,
            state,
            height,
            time_ms,
            caller,
            read_only: entry.read_only,
            writes: BTreeMap::new(),
            order: Vec::new(),
            host_error: None,
            failure: None,
        };
        let api = self.api;
        let mut params: Vec<Val> = Vec::with_capacity(entry.params.len().max(1));
        let mut result = Val::empty();
        let store = unsafe { (api.wasmtime_store_new)(self.engine, std::ptr::null_mut(), None) };
        let ctx = unsafe { (api.wasmtime_store_context)(store) };
        self.shared.current.set(&mut call as *mut CallState<'_> as *mut c_void);
        let outcome = (|| -> PyResult<Outcome<'py>> {
            let [memory, table_elements, instances, tables, memories] = limits.store_limits;
            unsafe { (api.wasmtime_store_limiter)(store, memory, table_elements, instances, tables, memories) };
            check(unsafe { (api.wasmtime_context_set_fuel)(ctx, fuel) })?;
            for (ty, value) in entry.params.iter().zip(args.try_iter()?) {
                params.push(Val::empty());
                let slot = params.last_mut().unwrap() as *mut Val;
                unsafe { lower(ty, &value?, slot)? };
            }
            let fuel_used = || -> PyResult<u64> {
                let mut left = 0u64;
                check(unsafe { (api.wasmtime_context_get_fuel)(ctx, &mut left) })?;
                Ok(fuel - left)
            };
            let failure = |reason: String| -> PyResult<Outcome<'py>> {
                Ok(Outcome { ok: false, value: None, error: Some(reason), fuel_used: fuel_used()?, writes: Vec::new() })
            };
            let mut instance = capi::Instance { store_id: 0, private: 0 };
            let error = unsafe { (api.wasmtime_component_linker_instantiate)(self.linker, ctx, self.component, &mut instance) };
            if !error.is_null() {
                let message = capi::take_error_message(error);
                if let Some(err) = call.failure.take() {
                    return Err(host_failed(py, err));
                }
                return failure(format!("instantiation failed: {}", trap_reason(&message, call.host_error.as_deref(), &self.reasons)));
            }
            let mut func = capi::Func::empty();
            if !unsafe { (api.wasmtime_component_instance_get_func)(&instance, ctx, entry.index, &mut func) } {
                return Err(PyRuntimeError::new_err("the entry point's export is not a function"));
            }
            let has_result = entry.result.is_some();
            let error = unsafe {
                (api.wasmtime_component_func_call)(&func, ctx, params.as_ptr(), params.len(),
                    if has_result { &mut result } else { std::ptr::null_mut() }, has_result as usize)
            };
            if let Some(err) = call.failure.take() {
                if !error.is_null() {
                    capi::take_error_message(error); // only freed: the host failure is what is reported
                } else if has_result {
                    unsafe { (api.wasmtime_component_val_delete)(&mut result) };
                }
                return Err(host_failed(py, err));
            }
            if !error.is_null() {
                let message = capi::take_error_message(error);
                return failure(trap_reason(&message, call.host_error.as_deref(), &self.reasons));
            }
            let mut writes = Vec::with_capacity(call.order.len());
            let value = match &entry.result {
                None => None,
                Some((result_ty, shortest)) => {
                    let lifted = lift_json(py, result_ty, *shortest, &result, result_limit, &self.dumps);
                    unsafe { (api.wasmtime_component_val_delete)(&mut result) };
                    match lifted? {
                        Ok(value) => Some(value),
                        Err(TooLarge(size)) => return failure(format!(
                            "result of at least {size} bytes exceeds the limit of {result_limit} bytes ({limit_name}; \
                             counted as canonical JSON, and refused before it was copied out in full)"
                        )),
                    }
                }
            };
            for key in std::mem::take(&mut call.order) {
                let value = call.writes.remove(&key).expect("every key in order was written");
                writes.push((key, value));
            }
            Ok(Outcome { ok: true, value, error: None, fuel_used: fuel_used()?, writes })
        })();
        self.shared.current.set(std::ptr::null_mut());
        for param in params.iter_mut() {
            unsafe { (api.wasmtime_component_val_delete)(param) };
        }
        unsafe { (api.wasmtime_store_delete)(store) };
        outcome
    }
}

fn host_failed(py: Python<'_>, cause: PyErr) -> PyErr {
    let err = HostFailed::new_err("the host failed while serving a call");
    err.set_cause(py, Some(cause));
    err
}

impl NativeVm {
    fn define_host_functions(&self, state_interface: &str, context_interface: &str) -> PyResult<()> {
        let api = self.api;
        let env = &*self.shared as *const Shared as *mut c_void;
        unsafe {
            let root = (api.wasmtime_component_linker_root)(self.linker);
            let groups: [(&str, &[(&str, capi::HostCallback)]); 2] = [
                (state_interface, &[("get", host::cb_get), ("set", host::cb_set), ("remove", host::cb_remove), ("scan", host::cb_scan)]),
                (context_interface, &[("block", host::cb_block), ("caller", host::cb_caller)]),
            ];
            let mut outcome = Ok(());
            for (interface, funcs) in groups {
                let mut instance = std::ptr::null_mut();
                let error = (api.wasmtime_component_linker_instance_add_instance)(
                    root, interface.as_ptr() as *const _, interface.len(), &mut instance);
                if let Err(err) = check(error) {
                    outcome = Err(err);
                    break;
                }
                for (name, callback) in funcs {
                    let error = (api.wasmtime_component_linker_instance_add_func)(
                        instance, name.as_ptr() as *const _, name.len(), *callback, env, None);
                    if let Err(err) = check(error) {
                        outcome = Err(err);
                    }
                }
                (api.wasmtime_component_linker_instance_delete)(instance);
            }
            (api.wasmtime_component_linker_instance_delete)(root);
            outcome
        }
    }
}

impl Drop for NativeVm {
    fn drop(&mut self) {
        unsafe { (self.api.wasmtime_component_linker_delete)(self.linker) };
    }
}

