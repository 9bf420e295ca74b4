//! rtc_native: the compiled per-transaction core of Real-time clusters.
//!
//! The Python implementation in `rtc` is the reference; this module must agree with it
//! exactly (tests/native runs both on the same workloads). `rtc.vm.native` is its only user.

mod block;
mod capi;
mod host;
mod merkle;
mod swarm;
mod types;
mod values;
mod vm;

use pyo3::prelude::*;

/// `trap_reason(message, host_error, reasons)`, exposed so the differential test can compare it.
#[pyfunction]
fn trap_reason(message: &str, host_error: Option<&str>, reasons: Vec<(String, String)>) -> String {
    vm::trap_reason(message, host_error, &reasons)
}

#[pymodule]
fn rtc_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<vm::NativeVm>()?;
    m.add_class::<block::BlockCalls>()?;
    m.add_class::<host::ScanMeter>()?;
    m.add("OutOfFuel", m.py().get_type::<host::OutOfFuel>())?;
    m.add("HostFailed", m.py().get_type::<vm::HostFailed>())?;
    m.add("TreeCorrupt", m.py().get_type::<merkle::TreeCorrupt>())?;
    m.add_function(wrap_pyfunction!(trap_reason, m)?)?;
    m.add_function(wrap_pyfunction!(swarm::py_bmt_root, m)?)?;
    m.add_function(wrap_pyfunction!(swarm::py_keccak256, m)?)?;
    m.add_function(wrap_pyfunction!(swarm::chunk_address, m)?)?;
    m.add_function(wrap_pyfunction!(merkle::update_tree, m)?)?;
    Ok(())
}
