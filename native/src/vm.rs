//! One entry-point call, as `rtc.vm.engine.Backend.execute` makes it, without the interpreter
//! in the way: the same store limits and fuel, the same host functions charging the same
//! fuel in the same order, the same trap reasons, and the same result bound.
//!
//! The reference is the specification; every rule here names the Python it mirrors.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};

use crate::capi::{self, Api, Val, ValUnion};
use crate::types::{Prim, Ty};

pyo3::create_exception!(rtc_native, OutOfFuel, pyo3::exceptions::PyException, "A scan's meter ran out of fuel.");
pyo3::create_exception!(rtc_native, HostFailed, pyo3::exceptions::PyException,
    "The node failed while serving a call; its cause is the exception.");

/// `rtc.vm.engine.Limits`, the fields a call reads.
#[derive(Clone)]
pub struct Limits {
    fuel: u64,
    query_fuel: u64,
    max_result_bytes: i64,
    query_result_bytes: i64,
    store_limits: [i64; 5],
    max_key_bytes: usize,
    max_value_bytes: usize,
    max_writes: usize,
    max_scan: u32,
    max_scan_bytes: i64,
    host_call_fuel: i64,
    fuel_per_byte: i64,
    scan_entry_fuel: i64,
    scan_step_fuel: i64,
    scan_byte_fuel: i64,
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
struct CallState<'py> {
    py: Python<'py>,
    state: Bound<'py, PyAny>,
    height: u64,
    time_ms: u64,
    caller: &'py [u8],
    read_only: bool,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>, // in key order, for scans
    order: Vec<Vec<u8>>,                        // first-write order, as they are applied
    host_error: Option<String>,
    failure: Option<PyErr>,
}

/// What the host functions share with `execute`: the limits and the call in flight.
struct Shared {
    limits: Limits,
    current: std::cell::Cell<*mut c_void>,
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

// -- values ---------------------------------------------------------------------------

/// The bytes of a `list<u8>` value.
unsafe fn read_bytes(list: &capi::ValList) -> Vec<u8> {
    (0..list.size).map(|i| (*list.data.add(i)).of.u8).collect()
}

unsafe fn lower_bytes(data: &[u8], out: *mut Val) {
    (*out).kind = capi::K_LIST;
    let list = &mut (*out).of.list;
    (capi::api().wasmtime_component_vallist_new_uninit)(list, data.len());
    for (i, byte) in data.iter().enumerate() {
        list.data.add(i).write(Val { kind: capi::K_U8, of: ValUnion { u64: *byte as u64 } });
    }
}

unsafe fn boxed(ty: &Ty, value: &Bound<'_, PyAny>) -> PyResult<*mut Val> {
    let mut tmp = Val::empty();
    lower(ty, value, &mut tmp)?;
    Ok((capi::api().wasmtime_component_val_new)(&mut tmp))
}

/// `abi.lower`: a checked value (marshal.py's canonical form) into wasmtime's value.
unsafe fn lower(ty: &Ty, value: &Bound<'_, PyAny>, out: *mut Val) -> PyResult<()> {
    let api = capi::api();
    let out = &mut *out;
    match ty {
        Ty::Prim(prim) => {
            let (kind, of) = match prim {
                Prim::Bool => (capi::K_BOOL, ValUnion { boolean: value.extract()? }),
                Prim::S8 => (capi::K_S8, ValUnion { s8: value.extract()? }),
                Prim::U8 => (capi::K_U8, ValUnion { u8: value.extract()? }),
                Prim::S16 => (capi::K_S16, ValUnion { s16: value.extract()? }),
                Prim::U16 => (capi::K_U16, ValUnion { u16: value.extract()? }),
                Prim::S32 => (capi::K_S32, ValUnion { s32: value.extract()? }),
                Prim::U32 => (capi::K_U32, ValUnion { u32: value.extract()? }),
                Prim::S64 => (capi::K_S64, ValUnion { s64: value.extract()? }),
                Prim::U64 => (capi::K_U64, ValUnion { u64: value.extract()? }),
                Prim::F32 => (capi::K_F32, ValUnion { f32: value.extract::<f64>()? as f32 }),
                Prim::F64 => (capi::K_F64, ValUnion { f64: value.extract()? }),
                Prim::Char => {
                    let c: char = value.extract()?;
                    (capi::K_CHAR, ValUnion { character: c as u32 })
                }
                Prim::String => {
                    let text = value.cast::<PyString>()?.to_str()?;
                    (capi::K_STRING, ValUnion { string: capi::new_bytes(text.as_bytes()) })
                }
            };
            out.kind = kind;
            out.of = of;
        }
        Ty::List { element, bytes, .. } => {
            if *bytes {
                lower_bytes(value.cast::<PyBytes>()?.as_bytes(), out);
            } else {
                let items: Vec<Bound<'_, PyAny>> = value.try_iter()?.collect::<PyResult<_>>()?;
                out.kind = capi::K_LIST;
                (api.wasmtime_component_vallist_new_uninit)(&mut out.of.list, items.len());
                let data = out.of.list.data;
                for (i, item) in items.iter().enumerate() {
                    data.add(i).write(Val::empty());
                    lower(element, item, data.add(i))?;
                }
            }
        }
        Ty::Record(fields) => {
            out.kind = capi::K_RECORD;
            (api.wasmtime_component_valrecord_new_uninit)(&mut out.of.record, fields.len());
            let data = out.of.record.data;
            for (i, ((name, field_ty), item)) in fields.iter().zip(value.try_iter()?).enumerate() {
                let entry = data.add(i);
                (*entry).name = capi::new_bytes(&name.wit);
                (*entry).val = Val::empty();
                lower(field_ty, &item?, &mut (*entry).val)?;
            }
        }
        Ty::Tuple(elements) => {
            out.kind = capi::K_TUPLE;
            (api.wasmtime_component_valtuple_new_uninit)(&mut out.of.tuple, elements.len());
            let data = out.of.tuple.data;
            for (i, (element_ty, item)) in elements.iter().zip(value.try_iter()?).enumerate() {
                data.add(i).write(Val::empty());
                lower(element_ty, &item?, data.add(i))?;
            }
        }
        Ty::Option { payload, .. } => {
            out.kind = capi::K_OPTION;
            out.of.option = if value.is_none() { std::ptr::null_mut() } else { boxed(payload, &value.get_item(0)?)? };
        }
        Ty::Result { ok, err, .. } => {
            let side: String = value.get_item(0)?.extract()?;
            let is_ok = side == "ok";
            let payload_ty = if is_ok { ok } else { err };
            out.kind = capi::K_RESULT;
            let val = match payload_ty {
                None => std::ptr::null_mut(),
                Some(ty) => boxed(ty, &value.get_item(1)?)?,
            };
            out.of.result = capi::ValResult { is_ok, val };
        }
        Ty::Enum(_) => {
            out.kind = capi::K_ENUM;
            out.of.enumeration = capi::new_bytes(value.cast::<PyString>()?.to_str()?.as_bytes());
        }
        Ty::Variant(cases) => {
            let case = value.get_item(0)?;
            let case_name = case.cast::<PyString>()?.to_str()?;
            let chosen = cases
                .iter()
                .find(|c| c.name.wit == case_name.as_bytes())
                .ok_or_else(|| PyTypeError::new_err(format!("no case {case_name}")))?;
            out.kind = capi::K_VARIANT;
            let val = match &chosen.payload {
                None => std::ptr::null_mut(),
                Some(ty) => boxed(ty, &value.get_item(1)?)?,
            };
            out.of.variant = capi::ValVariant { discriminant: capi::new_bytes(case_name.as_bytes()), val };
        }
        Ty::Flags(_) => {
            let names: Vec<String> = value.extract()?;
            out.kind = capi::K_FLAGS;
            (api.wasmtime_component_valflags_new_uninit)(&mut out.of.flags, names.len());
            for (i, name) in names.iter().enumerate() {
                out.of.flags.data.add(i).write(capi::new_bytes(name.as_bytes()));
            }
        }
    }
    Ok(())
}

/// `abi.shortest_f32`: the shortest decimal that reads back as the same f32.
fn shortest_f32(value: f32) -> f64 {
    let wide = value as f64;
    if !wide.is_finite() {
        return wide;
    }
    for digits in 6..10 {
        let candidate: f64 = format!("{:.*e}", digits - 1, wide).parse().unwrap_or(wide);
        if (candidate as f32).to_bits() == value.to_bits() {
            return candidate;
        }
    }
    wide
}

fn float_json<'py>(py: Python<'py>, value: f64) -> Bound<'py, PyAny> {
    if value.is_nan() {
        PyString::new(py, "NaN").into_any()
    } else if value.is_infinite() {
        PyString::new(py, if value > 0.0 { "Infinity" } else { "-Infinity" }).into_any()
    } else {
        PyFloat::new(py, value).into_any()
    }
}

fn text<'py>(py: Python<'py>, vec: &capi::ByteVec) -> Bound<'py, PyString> {
    PyString::new(py, &String::from_utf8_lossy(capi::bytes_of(vec)))
}

/// `abi.Lifter`: a result read into JSON form within a size limit, counted before copying.
struct Lift<'py> {
    py: Python<'py>,
    limit: i64,
    left: i64,
}

struct TooLarge(i64);

impl<'py> Lift<'py> {
    fn spend(&mut self, size: i64) -> Result<(), TooLarge> {
        self.left -= size;
        if self.left < 0 {
            return Err(TooLarge(self.limit - self.left));
        }
        Ok(())
    }

    unsafe fn lift(&mut self, ty: &Ty, val: &Val) -> Result<Bound<'py, PyAny>, TooLarge> {
        let py = self.py;
        Ok(match ty {
            Ty::Prim(prim) => match prim {
                Prim::String => {
                    self.spend(val.of.string.size as i64)?;
                    text(py, &val.of.string).into_any()
                }
                Prim::Char => PyString::new(py, &char::from_u32(val.of.character).unwrap_or('\u{fffd}').to_string()).into_any(),
                Prim::F32 => float_json(py, shortest_f32(val.of.f32)),
                Prim::F64 => float_json(py, val.of.f64),
                Prim::Bool => PyBool::new(py, val.of.boolean).to_owned().into_any(),
                Prim::S8 => int(py, val.of.s8 as i64),
                Prim::U8 => int(py, val.of.u8 as i64),
                Prim::S16 => int(py, val.of.s16 as i64),
                Prim::U16 => int(py, val.of.u16 as i64),
                Prim::S32 => int(py, val.of.s32 as i64),
                Prim::U32 => int(py, val.of.u32 as i64),
                Prim::S64 => int(py, val.of.s64),
                Prim::U64 => val.of.u64.into_pyobject(py).unwrap().into_any(),
            },
            Ty::List { element, element_shortest, bytes } => {
                let list = &val.of.list;
                let count = list.size as i64;
                if count == 0 {
                    return Ok(PyList::empty(py).into_any());
                }
                self.spend(count - 1 + count * element_shortest)?;
                let out = PyList::empty(py);
                for i in 0..list.size {
                    let item = &*list.data.add(i);
                    let lifted = if *bytes { int(py, item.of.u8 as i64) } else { self.lift(element, item)? };
                    out.append(lifted).unwrap();
                }
                out.into_any()
            }
            Ty::Record(fields) => {
                let record = &val.of.record;
                let out = PyDict::new(py);
                for (i, (name, field_ty)) in fields.iter().enumerate() {
                    let entry = &*record.data.add(i);
                    out.set_item(name.json.bind(py), self.lift(field_ty, &entry.val)?).unwrap();
                }
                out.into_any()
            }
            Ty::Tuple(elements) => {
                let tuple = &val.of.tuple;
                let out = PyList::empty(py);
                for (i, element_ty) in elements.iter().enumerate() {
                    out.append(self.lift(element_ty, &*tuple.data.add(i))?).unwrap();
                }
                out.into_any()
            }
            Ty::Option { payload, nullable, extra_none, extra_some } => {
                let some = val.of.option;
                self.spend(if some.is_null() { *extra_none } else { *extra_some })?;
                if some.is_null() {
                    return Ok(py.None().into_bound(py));
                }
                let inner = self.lift(payload, &*some)?;
                if *nullable {
                    let wrapped = PyDict::new(py);
                    wrapped.set_item("some", inner).unwrap();
                    wrapped.into_any()
                } else {
                    inner
                }
            }
            Ty::Result { ok, err, extra_ok, extra_err } => {
                let result = &val.of.result;
                self.spend(if result.is_ok { *extra_ok } else { *extra_err })?;
                let (side, payload_ty) = if result.is_ok { ("ok", ok) } else { ("err", err) };
                let payload = match payload_ty {
                    None => py.None().into_bound(py),
                    Some(ty) => self.lift(ty, &*result.val)?,
                };
                let out = PyDict::new(py);
                out.set_item(side, payload).unwrap();
                out.into_any()
            }
            Ty::Enum(cases) => {
                let name = capi::bytes_of(&val.of.enumeration);
                let case = cases.iter().find(|c| c.name.wit == name).expect("wasmtime lifted a known case");
                self.spend(case.extra)?;
                case.name.json.bind(py).clone().into_any()
            }
            Ty::Variant(cases) => {
                let name = capi::bytes_of(&val.of.variant.discriminant);
                let case = cases.iter().find(|c| c.name.wit == name).expect("wasmtime lifted a known case");
                self.spend(case.extra)?;
                match &case.payload {
                    None => case.name.json.bind(py).clone().into_any(),
                    Some(ty) => {
                        let out = PyDict::new(py);
                        out.set_item(case.name.json.bind(py), self.lift(ty, &*val.of.variant.val)?).unwrap();
                        out.into_any()
                    }
                }
            }
            Ty::Flags(names) => {
                let flags = &val.of.flags;
                let chosen: Vec<&[u8]> = (0..flags.size).map(|i| capi::bytes_of(&*flags.data.add(i))).collect();
                let out = PyList::empty(py);
                let mut size = 0i64;
                for name in names {
                    if chosen.contains(&name.wit.as_slice()) {
                        let json = name.json.bind(py);
                        size += json.to_str().map(|s| s.len()).unwrap_or(0) as i64 + 3;
                        out.append(json).unwrap();
                    }
                }
                if size > 0 {
                    self.spend(size - 1)?;
                }
                out.into_any()
            }
        })
    }
}

fn int(py: Python<'_>, value: i64) -> Bound<'_, PyAny> {
    value.into_pyobject(py).unwrap().into_any()
}

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
        unsafe extern "C" fn $cname(env: *mut c_void, ctx: *mut capi::wasmtime_context_t,
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

/// `Lifter.lift_json`: Ok(Err(TooLarge)) when the result's canonical JSON passes `limit`.
fn lift_json<'py>(py: Python<'py>, ty: &Ty, shortest: i64, val: &Val, limit: i64, dumps: &Py<PyAny>)
                  -> PyResult<Result<Bound<'py, PyAny>, TooLarge>> {
    if shortest > limit {
        return Ok(Err(TooLarge(shortest)));
    }
    let mut lift = Lift { py, limit, left: limit - shortest };
    let value = match unsafe { lift.lift(ty, val) } {
        Ok(value) => value,
        Err(too_large) => return Ok(Err(too_large)),
    };
    if (limit - lift.left) * 20 > limit {
        // it may not fit: measure it (abi._EXPANSION)
        let size = dumps.bind(py).call1((&value,))?.len()? as i64;
        if size > limit {
            return Ok(Err(TooLarge(size)));
        }
    }
    Ok(Ok(value))
}

impl NativeVm {
    fn define_host_functions(&self, state_interface: &str, context_interface: &str) -> PyResult<()> {
        let api = self.api;
        let env = &*self.shared as *const Shared as *mut c_void;
        unsafe {
            let root = (api.wasmtime_component_linker_root)(self.linker);
            let groups: [(&str, &[(&str, capi::HostCallback)]); 2] = [
                (state_interface, &[("get", cb_get), ("set", cb_set), ("remove", cb_remove), ("scan", cb_scan)]),
                (context_interface, &[("block", cb_block), ("caller", cb_caller)]),
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
