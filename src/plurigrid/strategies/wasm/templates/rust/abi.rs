//! Plurigrid strategy ABI 1 (docs/modules.md) for Rust: the host obtains input memory from the
//! exported `alloc`, writes the observation (UTF-8 JSON) there, calls `decide(ptr, len)` and reads
//! the decision JSON at the packed `(ptr << 32) | len` it returns.

use core::fmt::Write;
use core::ptr::addr_of_mut;

const PAGE_BYTES: usize = 65536;
const ARENA_BYTES: usize = 65536;
const OUT_BYTES: usize = 4096;

static mut ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES];
static mut LARGE: (usize, usize) = (0, 0); // (address, bytes) of pages grown for a large input
static mut OUT: [u8; OUT_BYTES] = [0; OUT_BYTES];

/// Memory for the host's input: a static arena, or fresh pages for an input larger than it. The
/// host calls `alloc` before each call, so one buffer is reused.
#[no_mangle]
pub extern "C" fn alloc(size: usize) -> *mut u8 {
    unsafe {
        if size <= ARENA_BYTES {
            return addr_of_mut!(ARENA) as *mut u8;
        }
        if size > LARGE.1 {
            let pages = (size + PAGE_BYTES - 1) / PAGE_BYTES;
            let first = core::arch::wasm32::memory_grow(0, pages);
            if first == usize::MAX {
                core::arch::wasm32::unreachable();
            }
            LARGE = (first * PAGE_BYTES, pages * PAGE_BYTES);
        }
        LARGE.0 as *mut u8
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The observation the host wrote for this call.
pub struct Observation {
    json: &'static [u8],
}

impl Observation {
    /// # Safety
    /// `ptr` and `len` must be what the host passed to `decide`.
    pub unsafe fn from_host(ptr: *const u8, len: usize) -> Self {
        Observation { json: core::slice::from_raw_parts(ptr, len) }
    }

    /// The top-level number `key`, or `fallback` when it is absent or not a number.
    pub fn get(&self, key: &str, fallback: f64) -> f64 {
        self.find(key).and_then(|at| number(self.json, at)).unwrap_or(fallback)
    }

    /// Offset just after `"key":` among the top-level keys.
    fn find(&self, key: &str) -> Option<usize> {
        let json = self.json;
        let (mut i, mut depth) = (0, 0);
        while i < json.len() {
            match json[i] {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b'"' => {
                    let start = i + 1;
                    i = start;
                    while i < json.len() && json[i] != b'"' {
                        i += if json[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= json.len() {
                        return None;
                    }
                    if depth == 1 && &json[start..i] == key.as_bytes() {
                        let colon = skip_blanks(json, i + 1);
                        if json.get(colon) == Some(&b':') {
                            return Some(colon + 1);
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

fn skip_blanks(json: &[u8], mut at: usize) -> usize {
    while at < json.len() && matches!(json[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The JSON number at `at` (blanks first).
fn number(json: &[u8], at: usize) -> Option<f64> {
    let start = skip_blanks(json, at);
    let end = start + json[start..].iter().take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
    core::str::from_utf8(&json[start..end]).ok()?.parse().ok()
}

/// The decision, written as a JSON object into a static buffer.
pub struct Decision {
    len: usize,
}

impl Write for Decision {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let out = unsafe { &mut *addr_of_mut!(OUT) };
        let end = self.len + text.len();
        if end > OUT_BYTES {
            return Err(core::fmt::Error);
        }
        out[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Decision {
    pub fn new() -> Self {
        Decision { len: 0 }
    }

    fn key(&mut self, key: &str) {
        let _ = write!(self, "{}\"{}\":", if self.len == 0 { "{" } else { "," }, key);
    }

    /// Adds a number field; NaN and infinities become 0 (JSON has none).
    pub fn number(&mut self, key: &str, value: f64) {
        self.key(key);
        let _ = write!(self, "{}", if value.is_finite() { value } else { 0.0 });
    }

    pub fn flag(&mut self, key: &str, value: bool) {
        self.key(key);
        let _ = write!(self, "{}", value);
    }

    /// Closes the object; returns what `decide` returns.
    pub fn finish(mut self) -> u64 {
        let _ = self.write_str(if self.len == 0 { "{}" } else { "}" });
        let ptr = unsafe { addr_of_mut!(OUT) as usize };
        ((ptr as u64) << 32) | self.len as u64
    }
}
