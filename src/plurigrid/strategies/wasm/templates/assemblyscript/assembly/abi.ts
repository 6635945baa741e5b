// Plurigrid strategy ABI 1 (docs/modules.md) for AssemblyScript: the host obtains input memory from
// the exported `alloc`, writes the observation (UTF-8 JSON) there, calls `decide(ptr, len)` and
// reads the decision JSON at the packed (ptr << 32) | len it returns.

let input: usize = 0;
// The last decision, kept reachable so the collector leaves it alone until the host has read it.
let output = new ArrayBuffer(0);

/** Memory for the host's input; the previous input is freed, as the host calls alloc before each call. */
export function alloc(size: i32): usize {
  if (input != 0) heap.free(input);
  input = heap.alloc(<usize>size);
  return input;
}

/** The observation the host wrote for this call. */
export class Observation {
  constructor(private ptr: usize, private len: i32) {}

  /** The top-level number `key`, or `fallback` when it is absent or not a number. */
  get(key: string, fallback: f64): f64 {
    const at = this.find(key);
    if (at < 0) return fallback;
    const start = this.skipBlanks(at);
    let end = start;
    while (isNumberChar(this.byte(end))) end++;
    const value = parseFloat(String.UTF8.decodeUnsafe(this.ptr + <usize>start, <usize>(end - start)));
    return isNaN(value) ? fallback : value;
  }

  private byte(i: i32): i32 {
    return i < this.len ? <i32>load<u8>(this.ptr + <usize>i) : -1;
  }

  private skipBlanks(i: i32): i32 {
    let c = this.byte(i);
    while (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) c = this.byte(++i);
    return i;
  }

  /** Offset just after `"key":` among the top-level keys, or -1. */
  private find(key: string): i32 {
    let depth = 0;
    for (let i = 0; i < this.len; i++) {
      const c = this.byte(i);
      if (c == 0x7b || c == 0x5b) depth++;
      else if (c == 0x7d || c == 0x5d) depth--;
      else if (c == 0x22) {
        const start = ++i;
        while (i < this.len && this.byte(i) != 0x22) i += this.byte(i) == 0x5c ? 2 : 1;
        if (i >= this.len) return -1;
        if (depth == 1 && this.same(start, i - start, key)) {
          const colon = this.skipBlanks(i + 1);
          if (this.byte(colon) == 0x3a) return colon + 1;
        }
      }
    }
    return -1;
  }

  private same(start: i32, len: i32, key: string): bool {
    if (len != key.length) return false;
    for (let k = 0; k < len; k++) if (this.byte(start + k) != key.charCodeAt(k)) return false;
    return true;
  }
}

function isNumberChar(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45;
}

/** The decision, built as a JSON object. */
export class Decision {
  private text: string = "";

  private key(key: string): void {
    this.text += (this.text.length == 0 ? '{"' : ',"') + key + '":';
  }

  /** Adds a number field; NaN and infinities become 0 (JSON has none). */
  number(key: string, value: f64): void {
    this.key(key);
    this.text += (isFinite(value) ? value : 0.0).toString();
  }

  flag(key: string, value: bool): void {
    this.key(key);
    this.text += value ? "true" : "false";
  }

  /** Closes the object; returns what `decide` returns. */
  finish(): i64 {
    output = String.UTF8.encode(this.text.length == 0 ? "{}" : this.text + "}");
    return (<i64>changetype<usize>(output) << 32) | <i64>output.byteLength;
  }
}
