//! The part of wasmtime's C API the core calls, resolved from the library wasmtime-py loaded.
//!
//! Why not the `wasmtime` crate: the Python reference runs the C library that wasmtime-py
//! ships, and the two implementations must burn the same fuel and trap in the same places.
//! Calling that very library (found with `dlopen(RTLD_NOLOAD)`, so it is the instance
//! Python already holds) makes that true by construction, lets the core use the engine and
//! the compiled component Python made, and costs no build of wasmtime. The layouts below
//! mirror `wasmtime/component/val.h` of wasmtime 50 (wasmtime-py's `_bindings.py` spells
//! the same structs); `rtc/vm/capi.py` checks the installed major version.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void, CString};
use std::sync::OnceLock;

pub enum wasm_engine_t {}
pub enum wasmtime_store_t {}
pub enum wasmtime_context_t {}
pub enum wasmtime_error_t {}
pub enum wasmtime_component_t {}
pub enum wasmtime_component_linker_t {}
pub enum wasmtime_component_linker_instance_t {}
pub enum wasmtime_component_export_index_t {}
pub enum wasmtime_component_func_type_t {}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ByteVec {
    pub size: usize,
    pub data: *mut u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValList {
    pub size: usize,
    pub data: *mut Val,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecordEntry {
    pub name: ByteVec,
    pub val: Val,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValRecord {
    pub size: usize,
    pub data: *mut RecordEntry,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValFlags {
    pub size: usize,
    pub data: *mut ByteVec,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValVariant {
    pub discriminant: ByteVec,
    pub val: *mut Val,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ValResult {
    pub is_ok: bool,
    pub val: *mut Val,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union ValUnion {
    pub boolean: bool,
    pub s8: i8,
    pub u8: u8,
    pub s16: i16,
    pub u16: u16,
    pub s32: i32,
    pub u32: u32,
    pub s64: i64,
    pub u64: u64,
    pub f32: f32,
    pub f64: f64,
    pub character: u32,
    pub string: ByteVec,
    pub list: ValList,
    pub record: ValRecord,
    pub tuple: ValList,
    pub variant: ValVariant,
    pub enumeration: ByteVec,
    pub option: *mut Val,
    pub result: ValResult,
    pub flags: ValFlags,
}

/// `wasmtime_component_val_t`: a kind tag and its payload (32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Val {
    pub kind: u8,
    pub of: ValUnion,
}

impl Val {
    pub const fn empty() -> Val {
        Val { kind: K_BOOL, of: ValUnion { u64: 0 } }
    }
}

pub const K_BOOL: u8 = 0;
pub const K_S8: u8 = 1;
pub const K_U8: u8 = 2;
pub const K_S16: u8 = 3;
pub const K_U16: u8 = 4;
pub const K_S32: u8 = 5;
pub const K_U32: u8 = 6;
pub const K_S64: u8 = 7;
pub const K_U64: u8 = 8;
pub const K_F32: u8 = 9;
pub const K_F64: u8 = 10;
pub const K_CHAR: u8 = 11;
pub const K_STRING: u8 = 12;
pub const K_LIST: u8 = 13;
pub const K_RECORD: u8 = 14;
pub const K_TUPLE: u8 = 15;
pub const K_VARIANT: u8 = 16;
pub const K_ENUM: u8 = 17;
pub const K_OPTION: u8 = 18;
pub const K_RESULT: u8 = 19;
pub const K_FLAGS: u8 = 20;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Instance {
    pub store_id: u64,
    pub private: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FuncHead {
    store_id: u64,
    private1: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Func {
    head: FuncHead,
    private2: u32,
    private3: *mut c_void,
}

impl Func {
    pub const fn empty() -> Func {
        Func { head: FuncHead { store_id: 0, private1: 0 }, private2: 0, private3: std::ptr::null_mut() }
    }
}

pub type HostCallback = unsafe extern "C" fn(
    env: *mut c_void,
    ctx: *mut wasmtime_context_t,
    ty: *const wasmtime_component_func_type_t,
    args: *mut Val,
    nargs: usize,
    results: *mut Val,
    nresults: usize,
) -> *mut wasmtime_error_t;

type Finalizer = Option<unsafe extern "C" fn(*mut c_void)>;

macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// Function pointers into the loaded wasmtime library.
        pub struct Api { $(pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)* }

        impl Api {
            unsafe fn resolve(handle: *mut c_void) -> Result<Api, String> {
                Ok(Api { $($name: {
                    let name = concat!(stringify!($name), "\0");
                    let symbol = libc::dlsym(handle, name.as_ptr() as *const c_char);
                    if symbol.is_null() {
                        return Err(format!("the wasmtime library has no symbol {}", stringify!($name)));
                    }
                    std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(symbol)
                },)* })
            }
        }
    };
}

api! {
    wasmtime_store_new: fn(*mut wasm_engine_t, *mut c_void, Finalizer) -> *mut wasmtime_store_t;
    wasmtime_store_context: fn(*mut wasmtime_store_t) -> *mut wasmtime_context_t;
    wasmtime_store_limiter: fn(*mut wasmtime_store_t, i64, i64, i64, i64, i64);
    wasmtime_store_delete: fn(*mut wasmtime_store_t);
    wasmtime_context_set_fuel: fn(*mut wasmtime_context_t, u64) -> *mut wasmtime_error_t;
    wasmtime_context_get_fuel: fn(*const wasmtime_context_t, *mut u64) -> *mut wasmtime_error_t;
    wasmtime_component_linker_new: fn(*mut wasm_engine_t) -> *mut wasmtime_component_linker_t;
    wasmtime_component_linker_root: fn(*mut wasmtime_component_linker_t) -> *mut wasmtime_component_linker_instance_t;
    wasmtime_component_linker_instance_add_instance: fn(*mut wasmtime_component_linker_instance_t, *const c_char, usize,
        *mut *mut wasmtime_component_linker_instance_t) -> *mut wasmtime_error_t;
    wasmtime_component_linker_instance_add_func: fn(*mut wasmtime_component_linker_instance_t, *const c_char, usize,
        HostCallback, *mut c_void, Finalizer) -> *mut wasmtime_error_t;
    wasmtime_component_linker_instance_delete: fn(*mut wasmtime_component_linker_instance_t);
    wasmtime_component_linker_delete: fn(*mut wasmtime_component_linker_t);
    wasmtime_component_linker_instantiate: fn(*const wasmtime_component_linker_t, *mut wasmtime_context_t,
        *const wasmtime_component_t, *mut Instance) -> *mut wasmtime_error_t;
    wasmtime_component_instance_get_func: fn(*const Instance, *mut wasmtime_context_t,
        *const wasmtime_component_export_index_t, *mut Func) -> bool;
    wasmtime_component_func_call: fn(*const Func, *mut wasmtime_context_t, *const Val, usize, *mut Val, usize)
        -> *mut wasmtime_error_t;
    wasmtime_error_new: fn(*const c_char) -> *mut wasmtime_error_t;
    wasmtime_error_message: fn(*const wasmtime_error_t, *mut ByteVec);
    wasmtime_error_delete: fn(*mut wasmtime_error_t);
    wasm_byte_vec_new_uninitialized: fn(*mut ByteVec, usize);
    wasm_byte_vec_delete: fn(*mut ByteVec);
    wasmtime_component_val_new: fn(*mut Val) -> *mut Val;
    wasmtime_component_val_delete: fn(*mut Val);
    wasmtime_component_vallist_new_uninit: fn(*mut ValList, usize);
    wasmtime_component_valrecord_new_uninit: fn(*mut ValRecord, usize);
    wasmtime_component_valtuple_new_uninit: fn(*mut ValList, usize);
    wasmtime_component_valflags_new_uninit: fn(*mut ValFlags, usize);
}

// Function pointers into a library that stays loaded for the life of the process.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

static API: OnceLock<Api> = OnceLock::new();

/// Bind to the wasmtime library at `path`, which must already be loaded (by wasmtime-py).
pub fn load(path: &str) -> Result<&'static Api, String> {
    if let Some(api) = API.get() {
        return Ok(api);
    }
    let c_path = CString::new(path).map_err(|_| "the library path holds a NUL byte".to_string())?;
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Err(format!("{path} is not loaded in this process; import wasmtime first"));
    }
    let api = unsafe { Api::resolve(handle)? };
    Ok(API.get_or_init(|| api))
}

pub fn api() -> &'static Api {
    API.get().expect("rtc_native: the wasmtime library was not bound (capi::load)")
}

/// An owned UTF-8 name or string, as wasmtime's byte vectors hold them.
pub fn new_bytes(data: &[u8]) -> ByteVec {
    let mut vec = ByteVec { size: 0, data: std::ptr::null_mut() };
    unsafe {
        (api().wasm_byte_vec_new_uninitialized)(&mut vec, data.len());
        if !data.is_empty() {
            std::ptr::copy_nonoverlapping(data.as_ptr(), vec.data, data.len());
        }
    }
    vec
}

pub fn bytes_of(vec: &ByteVec) -> &[u8] {
    if vec.size == 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(vec.data, vec.size) }
}

/// The message of an owned error, which is freed here.
pub fn take_error_message(error: *mut wasmtime_error_t) -> String {
    let api = api();
    let mut vec = ByteVec { size: 0, data: std::ptr::null_mut() };
    unsafe {
        (api.wasmtime_error_message)(error, &mut vec);
        let message = String::from_utf8_lossy(bytes_of(&vec)).into_owned();
        (api.wasm_byte_vec_delete)(&mut vec);
        (api.wasmtime_error_delete)(error);
        message
    }
}

/// A new error for a host callback to return: wasmtime traps the guest with `reason`.
pub fn trap_error(reason: &str) -> *mut wasmtime_error_t {
    let text = CString::new(reason.replace('\0', " ")).unwrap_or_default();
    unsafe { (api().wasmtime_error_new)(text.as_ptr()) }
}
