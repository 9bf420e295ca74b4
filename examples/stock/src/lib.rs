//! `stock`: keeps the highest value seen per symbol.
//!
//! State layout: key `high/<symbol>` (UTF-8 bytes), value the 8-byte big-endian IEEE-754
//! bits of the maximum.

wit_bindgen::generate!({
    world: "rtc-example:stock/stock",
    path: ["../../src/rtc/vm/wit", "wit"],
    generate_all,
});

use exports::rtc_example::stock::queries;
use rtc::backend::state;

const PREFIX: &[u8] = b"high/";
/// First key after every `high/...` key: `/` + 1 is `0`.
const PREFIX_END: &[u8] = b"high0";
const MAX_SYMBOL_BYTES: usize = 32;
/// Entries fetched per `scan` call when listing symbols.
const SCAN_PAGE: u32 = 256;

struct Stock;

fn key(symbol: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(PREFIX.len() + symbol.len());
    k.extend_from_slice(PREFIX);
    k.extend_from_slice(symbol.as_bytes());
    k
}

fn decode(bytes: &[u8]) -> f64 {
    let raw: [u8; 8] = bytes.try_into().expect("stock: stored high is not 8 bytes");
    f64::from_bits(u64::from_be_bytes(raw))
}

/// What a new high of 1000 or more is multiplied by before it is stored: 1 here. The `cartel`
/// build (examples/stock-cartel, fault injection for dispute tests) records 1% more: a lie an
/// honest replay exposes. Both builds run the same instructions (only this constant differs,
/// kept opaque to the optimizer), so they burn the same fuel, and their states differ only
/// once a value of 1000 or more is recorded: an honest stretch can be validated first.
#[cfg(not(feature = "cartel"))]
const HIGH_FACTOR: f64 = 1.0;
#[cfg(feature = "cartel")]
const HIGH_FACTOR: f64 = 1.01;

fn recorded(value: f64) -> f64 {
    if value >= 1000.0 { value * core::hint::black_box(HIGH_FACTOR) } else { value }
}

fn read_high(symbol: &str) -> Option<f64> {
    state::get(&key(symbol)).map(|v| decode(&v))
}

impl Guest for Stock {
    fn update_high(symbol: String, value: f64) -> Result<f64, String> {
        if symbol.is_empty() {
            return Err("symbol must not be empty".into());
        }
        if symbol.len() > MAX_SYMBOL_BYTES {
            return Err(format!(
                "symbol is {} bytes long, at most {MAX_SYMBOL_BYTES} allowed",
                symbol.len()
            ));
        }
        if !value.is_finite() {
            // No `{value}` here: formatting an f64 would double the module's size.
            return Err("value must be a finite number (not NaN or infinite)".into());
        }
        let high = match read_high(&symbol) {
            Some(old) if old >= value => return Ok(old),
            _ => recorded(value),
        };
        state::set(&key(&symbol), &high.to_bits().to_be_bytes());
        Ok(high)
    }
}

impl queries::Guest for Stock {
    fn get_high(symbol: String) -> Option<f64> {
        read_high(&symbol)
    }

    fn symbols() -> Vec<String> {
        let mut out = Vec::new();
        let mut start = PREFIX.to_vec();
        loop {
            let page = state::scan(&start, Some(PREFIX_END), SCAN_PAGE);
            let full = page.len() as u32 == SCAN_PAGE;
            let Some((last, _)) = page.last() else { break };
            // Continue right after the last key seen: the smallest larger key is key + 0x00.
            let mut next = last.clone();
            next.push(0);
            for (k, _) in page {
                let symbol = k
                    .strip_prefix(PREFIX)
                    .map(|s| String::from_utf8(s.to_vec()));
                if let Some(Ok(symbol)) = symbol {
                    out.push(symbol);
                }
            }
            if !full {
                break;
            }
            start = next;
        }
        out
    }
}

export!(Stock);
