//! Values between Python and wasmtime: a checked argument (marshal.py's canonical form)
//! lowered into wasmtime's C value, and a result lifted into JSON form within a size limit,
//! as `rtc/vm/abi.py` does it.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};

use crate::capi::{self, Val, ValUnion};
use crate::types::{Prim, Ty};

/// The bytes of a `list<u8>` value.
pub(crate) unsafe fn read_bytes(list: &capi::ValList) -> Vec<u8> {
    (0..list.size).map(|i| (*list.data.add(i)).of.u8).collect()
}

pub(crate) unsafe fn lower_bytes(data: &[u8], out: *mut Val) {
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
pub(crate) unsafe fn lower(ty: &Ty, value: &Bound<'_, PyAny>, out: *mut Val) -> PyResult<()> {
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

pub(crate) struct TooLarge(pub(crate) i64);

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

/// `Lifter.lift_json`: Ok(Err(TooLarge)) when the result's canonical JSON passes `limit`.
pub(crate) fn lift_json<'py>(py: Python<'py>, ty: &Ty, shortest: i64, val: &Val, limit: i64, dumps: &Py<PyAny>)
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
