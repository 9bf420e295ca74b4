//! WIT value types, read once from the description `rtc/vm/native.py` makes of the
//! reference's types, with the JSON sizes its `abi.Lifter` computes (so the size bound of a
//! result is the reference's own arithmetic, not a second copy of it).

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

pub enum Prim {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
}

/// A name as WIT spells it (kebab-case, what wasmtime's values carry) and as JSON shows it.
pub struct Name {
    pub wit: Vec<u8>,
    pub json: Py<PyString>,
}

pub struct Case {
    pub name: Name,
    pub payload: Option<Ty>,
    pub extra: i64, // what choosing this case adds to the type's shortest JSON
}

pub enum Ty {
    Prim(Prim),
    List { element: Box<Ty>, element_shortest: i64, bytes: bool },
    Record(Vec<(Name, Ty)>),
    Tuple(Vec<Ty>),
    Option { payload: Box<Ty>, nullable: bool, extra_none: i64, extra_some: i64 },
    Result { ok: Option<Box<Ty>>, err: Option<Box<Ty>>, extra_ok: i64, extra_err: i64 },
    Enum(Vec<Case>),
    Variant(Vec<Case>),
    Flags(Vec<Name>),
}

fn name(item: &Bound<'_, PyAny>) -> PyResult<Name> {
    let wit: String = item.get_item(0)?.extract()?;
    let json = item.get_item(1)?.cast_into::<PyString>()?.unbind();
    Ok(Name { wit: wit.into_bytes(), json })
}

fn optional(item: Bound<'_, PyAny>) -> PyResult<Option<Box<Ty>>> {
    if item.is_none() {
        Ok(None)
    } else {
        Ok(Some(Box::new(Ty::from_py(&item)?)))
    }
}

impl Ty {
    pub fn from_py(desc: &Bound<'_, PyAny>) -> PyResult<Ty> {
        let tuple = desc.cast::<PyTuple>()?;
        let tag: String = tuple.get_item(0)?.extract()?;
        let field = |i: usize| tuple.get_item(i);
        Ok(match tag.as_str() {
            "prim" => {
                let prim: String = field(1)?.extract()?;
                Ty::Prim(match prim.as_str() {
                    "bool" => Prim::Bool,
                    "s8" => Prim::S8,
                    "u8" => Prim::U8,
                    "s16" => Prim::S16,
                    "u16" => Prim::U16,
                    "s32" => Prim::S32,
                    "u32" => Prim::U32,
                    "s64" => Prim::S64,
                    "u64" => Prim::U64,
                    "f32" => Prim::F32,
                    "f64" => Prim::F64,
                    "char" => Prim::Char,
                    "string" => Prim::String,
                    other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown primitive {other}"))),
                })
            }
            "list" => {
                let element = Ty::from_py(&field(1)?)?;
                let bytes = matches!(element, Ty::Prim(Prim::U8));
                Ty::List { element: Box::new(element), element_shortest: field(2)?.extract()?, bytes }
            }
            "record" => {
                let mut fields = Vec::new();
                for item in field(1)?.try_iter()? {
                    let item = item?;
                    fields.push((name(&item)?, Ty::from_py(&item.get_item(2)?)?));
                }
                Ty::Record(fields)
            }
            "tuple" => {
                let mut elements = Vec::new();
                for item in field(1)?.try_iter()? {
                    elements.push(Ty::from_py(&item?)?);
                }
                Ty::Tuple(elements)
            }
            "option" => Ty::Option {
                payload: Box::new(Ty::from_py(&field(1)?)?),
                nullable: field(2)?.extract()?,
                extra_none: field(3)?.extract()?,
                extra_some: field(4)?.extract()?,
            },
            "result" => Ty::Result {
                ok: optional(field(1)?)?,
                err: optional(field(2)?)?,
                extra_ok: field(3)?.extract()?,
                extra_err: field(4)?.extract()?,
            },
            "enum" | "variant" => {
                let mut cases = Vec::new();
                for item in field(1)?.try_iter()? {
                    let item = item?;
                    let payload = if tag == "enum" { None } else { optional(item.get_item(2)?)?.map(|b| *b) };
                    let extra = item.get_item(if tag == "enum" { 2 } else { 3 })?.extract()?;
                    cases.push(Case { name: name(&item)?, payload, extra });
                }
                if tag == "enum" {
                    Ty::Enum(cases)
                } else {
                    Ty::Variant(cases)
                }
            }
            "flags" => {
                let mut names = Vec::new();
                for item in field(1)?.try_iter()? {
                    names.push(name(&item?)?);
                }
                Ty::Flags(names)
            }
            other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown type tag {other}"))),
        })
    }
}
