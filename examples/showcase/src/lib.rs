//! `showcase`: one entry point per kind of WIT value, for marshaling tests and docs.
//!
//! State layout:
//! - `profile/<name>`: a profile in the byte encoding of [`StoredProfile`];
//! - `counter`: the counter, 8-byte big-endian two's-complement;
//! - `last-height`: height of the block of the latest `block-info` call, 8-byte big-endian.

// echo-scalars takes 12 arguments; the generated glue would trip this lint.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "rtc-example:showcase/showcase",
    path: ["../../src/rtc/vm/wit", "wit"],
    generate_all,
});

use exports::rtc_example::showcase::queries;
use rtc::backend::{context, state};

const PROFILE_PREFIX: &str = "profile/";
const MAX_NAME_BYTES: usize = 256;
/// The host's limit on one stored value.
const MAX_VALUE_BYTES: usize = 64 * 1024;
const COUNTER_KEY: &[u8] = b"counter";
const LAST_HEIGHT_KEY: &[u8] = b"last-height";

struct Showcase;

// ---------------------------------------------------------------------------------------
// Profiles: own byte encoding, independent of the two generated `Profile` types.
// ---------------------------------------------------------------------------------------

/// A profile as stored, plus how many times its name has been written.
///
/// Encoding (integers big-endian, strings as u32 byte length + UTF-8 bytes):
/// `1u8` (format version), `writes: u32`, `name`, `age: u8`, `tags: u32 count + strings`,
/// `email: 0u8 | 1u8 string`, `level: u8` (guest 0, member 1, admin 2),
/// `permissions: u8` (bit 0 read, bit 1 write, bit 2 admin).
struct StoredProfile {
    writes: u32,
    name: String,
    age: u8,
    tags: Vec<String>,
    email: Option<String>,
    level: u8,
    permissions: u8,
}

const FORMAT_VERSION: u8 = 1;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl StoredProfile {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.writes.to_be_bytes());
        put_str(&mut out, &self.name);
        out.push(self.age);
        out.extend_from_slice(&(self.tags.len() as u32).to_be_bytes());
        for tag in &self.tags {
            put_str(&mut out, tag);
        }
        match &self.email {
            None => out.push(0),
            Some(email) => {
                out.push(1);
                put_str(&mut out, email);
            }
        }
        out.push(self.level);
        out.push(self.permissions);
        out
    }

    /// None if `bytes` is not a well-formed encoding.
    fn decode(bytes: &[u8]) -> Option<StoredProfile> {
        let mut r = Reader(bytes);
        if r.u8()? != FORMAT_VERSION {
            return None;
        }
        let writes = r.u32()?;
        let name = r.string()?;
        let age = r.u8()?;
        let count = r.u32()?;
        let mut tags = Vec::new();
        for _ in 0..count {
            tags.push(r.string()?);
        }
        let email = match r.u8()? {
            0 => None,
            1 => Some(r.string()?),
            _ => return None,
        };
        let level = r.u8()?;
        let permissions = r.u8()?;
        if level > 2 || permissions > 0b111 || !r.0.is_empty() {
            return None;
        }
        Some(StoredProfile {
            writes,
            name,
            age,
            tags,
            email,
            level,
            permissions,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

fn profile_key(name: &str) -> Vec<u8> {
    format!("{PROFILE_PREFIX}{name}").into_bytes()
}

/// The stored profile under `key`; a malformed value traps (it can only be a bug).
fn load_profile(key: &[u8]) -> Option<StoredProfile> {
    let bytes = state::get(key)?;
    Some(StoredProfile::decode(&bytes).expect("showcase: malformed stored profile"))
}

// ---------------------------------------------------------------------------------------
// Small state helpers
// ---------------------------------------------------------------------------------------

fn read_i64(key: &[u8]) -> i64 {
    match state::get(key) {
        None => 0,
        Some(bytes) => {
            let raw: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .expect("showcase: stored value is not 8 bytes");
            i64::from_be_bytes(raw)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------

impl Guest for Showcase {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn stats(values: Vec<f64>) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        // f64::min/max return the other operand when one is NaN, so starting from NaN
        // skips NaN elements (an all-NaN list gives NaN).
        let min = values.iter().copied().fold(f64::NAN, f64::min);
        let max = values.iter().copied().fold(f64::NAN, f64::max);
        let sum: f64 = values.iter().sum();
        let count = values.len() as u32;
        Some(Summary {
            count,
            min,
            max,
            mean: sum / values.len() as f64,
        })
    }

    fn put_profile(profile: Profile) -> Result<u32, String> {
        if profile.name.is_empty() {
            return Err("name must not be empty".into());
        }
        if profile.name.len() > MAX_NAME_BYTES {
            return Err(format!(
                "name is {} bytes long, at most {MAX_NAME_BYTES} allowed",
                profile.name.len()
            ));
        }
        let key = profile_key(&profile.name);
        let writes = match load_profile(&key) {
            None => 1,
            Some(old) => old.writes.checked_add(1).ok_or("write count overflow")?,
        };
        let stored = StoredProfile {
            writes,
            name: profile.name,
            age: profile.age,
            tags: profile.tags,
            email: profile.email,
            level: match profile.level {
                Level::Guest => 0,
                Level::Member => 1,
                Level::Admin => 2,
            },
            permissions: profile.permissions.bits(),
        };
        let bytes = stored.encode();
        if bytes.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "encoded profile is {} bytes, at most {MAX_VALUE_BYTES} allowed",
                bytes.len()
            ));
        }
        state::set(&key, &bytes);
        Ok(writes)
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => core::f64::consts::PI * r * r,
            Shape::Rect((w, h)) => w * h,
            Shape::Point => 0.0,
        }
    }

    fn echo_scalars(
        b: bool,
        i8v: i8,
        i16v: i16,
        i32v: i32,
        i64v: i64,
        u8v: u8,
        u16v: u16,
        u32v: u32,
        u64v: u64,
        f32v: f32,
        f64v: f64,
        c: char,
    ) -> (bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, char) {
        (
            b, i8v, i16v, i32v, i64v, u8v, u16v, u32v, u64v, f32v, f64v, c,
        )
    }

    fn divide(a: i64, b: i64) -> Result<i64, String> {
        if b == 0 {
            return Err("division by zero".into());
        }
        a.checked_div(b)
            .ok_or_else(|| format!("overflow: {a} / {b} does not fit in s64"))
    }

    fn nested(
        x: Option<Option<u8>>,
        y: Vec<Vec<String>>,
        z: Result<(), String>,
    ) -> (Option<Option<u8>>, Vec<Vec<String>>, Result<(), String>) {
        (x, y, z)
    }

    fn block_info() -> (u64, u64, Vec<u8>) {
        let block = context::block();
        state::set(LAST_HEIGHT_KEY, &block.height.to_be_bytes());
        (block.height, block.time_ms, context::caller())
    }

    fn counter_add(n: i64) -> i64 {
        let value = read_i64(COUNTER_KEY)
            .checked_add(n)
            .expect("showcase: counter overflow");
        state::set(COUNTER_KEY, &value.to_be_bytes());
        value
    }
}

impl queries::Guest for Showcase {
    fn get_profile(name: String) -> Option<queries::Profile> {
        let p = load_profile(&profile_key(&name))?;
        Some(queries::Profile {
            name: p.name,
            age: p.age,
            tags: p.tags,
            email: p.email,
            level: match p.level {
                0 => queries::Level::Guest,
                1 => queries::Level::Member,
                _ => queries::Level::Admin,
            },
            permissions: queries::Permissions::from_bits_retain(p.permissions),
        })
    }

    fn counter_get() -> i64 {
        read_i64(COUNTER_KEY)
    }
}

export!(Showcase);
