"""How fast modules burn fuel, worst case first: the measurement behind the wall-clock backstop.

A module call is stopped by fuel (deterministic) long before its wall-clock deadline, which is a
backstop derived from the fuel limit (`Limits.deadline_ms`): BACKSTOP_FACTOR times the time the
fuel lasts at WORST_FUEL_PER_S. That rate must be at or below the slowest rate any module reaches.
This script runs hostile modules, each built to make one fuel unit as slow as it can (dependent
square roots, cache-missing loads, runtime calls, table and memory operations, host functions with
their largest arguments, seeded WASI randomness), on a fixed fuel budget, and prints their rates
beside the plain arithmetic loop measured in the same run, then checks the constant against the
slowest and prints the backstop's margin for the default fuel. Last, it shows what fuel does not
bound: WASI's file functions run in wasmtime's own code, charged one unit a call, so a module
granted `wasi` that reads or lists files in a loop can outlast its backstop (a host fault).

    .venv/bin/python benchmarks/bench_fuel.py            # every module, 20 million fuel each
    .venv/bin/python benchmarks/bench_fuel.py --fuel 2000000 --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from plurigrid.strategies.wasm.host import HOST_CALL_FUEL, ModuleInstance, compile_module
from plurigrid.strategies.wasm.manifest import BACKSTOP_FACTOR, WORST_FUEL_PER_S, Limits

MEMORY_PAGES = 256  # 16 MiB, the default memory limit
_ALLOC = '(func (export "alloc") (param i32) (result i32) (i32.const 1024))'
_MASK = MEMORY_PAGES * 65536 - 64

# name -> (imports and other module fields, body of decide's endless loop, grants)
HOSTILE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "arithmetic (baseline)": ("", "(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))", ()),
    "dependent f64.sqrt": ("", "(local $x f64) (loop $l (local.set $x (f64.sqrt (f64.add (local.get $x) (f64.const 1)))) (br $l))", ()),
    "dependent f64.div": ("", "(local $x f64) (local.set $x (f64.const 3)) "
                              "(loop $l (local.set $x (f64.div (f64.const 1e300) (local.get $x))) (br $l))", ()),
    "subnormal f64.div": ("", "(local $x f64) (local.set $x (f64.const 0x1p-1060)) "
                              "(loop $l (local.set $x (f64.div (local.get $x) (f64.const 1.0000001))) (br $l))", ()),
    "i64.div_u chain": ("", "(local $i i64) (local.set $i (i64.const 7)) (loop $l (local.set $i "
                            "(i64.div_u (i64.const -1) (i64.or (local.get $i) (i64.const 3)))) (br $l))", ()),
    "pointer chase (16 MiB)": ("", "(local $p i32) (local $x i32) (loop $l (local.set $x (i32.add (i32.mul (local.get $x) "
                                   "(i32.const 1103515245)) (i32.const 12345))) (local.set $p (i32.and (i32.xor (local.get $x) "
                                   f"(i32.load (local.get $p))) (i32.const {_MASK}))) (br $l))", ()),
    "memory.fill 16 MiB": ("", f"(loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const {MEMORY_PAGES * 65536})) (br $l))", ()),
    "memory.grow 0": ("", "(loop $l (drop (memory.grow (i32.const 0))) (br $l))", ()),
    "memory.grow past the limit": ("", "(loop $l (drop (memory.grow (i32.const 1))) (br $l))", ()),
    "table.grow 0": ("(table 1 funcref)", "(loop $l (drop (table.grow (ref.null func) (i32.const 0))) (br $l))", ()),
    "table.copy 1M": ("(table 1048576 funcref)", "(loop $l (table.copy (i32.const 0) (i32.const 1) (i32.const 1048575)) (br $l))", ()),
    "recursion 10,000 deep": ("(func $r (param i32) (result i32) (if (result i32) (local.get 0) "
                              "(then (call $r (i32.sub (local.get 0) (i32.const 1)))) (else (i32.const 0))))",
                              "(loop $l (drop (call $r (i32.const 10000))) (br $l))", ()),
    "call_indirect": ("(type $t (func (param i32) (result i32))) (table 1 funcref) (elem (i32.const 0) $f) "
                      "(func $f (type $t) (local.get 0))",
                      "(local $i i32) (loop $l (local.set $i (call_indirect (type $t) (local.get $i) (i32.const 0))) (br $l))", ()),
    "host now": ('(import "plurigrid" "now" (func $h (result i64)))', "(loop $l (drop (call $h)) (br $l))", ("now",)),
    "host log 16 MiB": ('(import "plurigrid" "log" (func $h (param i32 i32)))',
                        f"(loop $l (call $h (i32.const 0) (i32.const {MEMORY_PAGES * 65536})) (br $l))", ("log",)),
    "host kv_put 64 KiB": ('(import "plurigrid" "kv_put" (func $h (param i32 i32 i32 i32) (result i32)))',
                           "(loop $l (drop (call $h (i32.const 0) (i32.const 8) (i32.const 8) (i32.const 65000))) (br $l))",
                           ("kv",)),
    "host kv_put over the cap": ('(import "plurigrid" "kv_put" (func $h (param i32 i32 i32 i32) (result i32)))',
                                 "(loop $l (drop (call $h (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 16000000))) (br $l))",
                                 ("kv",)),
    "host prices 4 KiB": ('(import "plurigrid" "prices" (func $h (param i32 i32) (result i32)))',
                          "(loop $l (drop (call $h (i32.const 0) (i32.const 65536))) (br $l))", ("prices",)),
    "host send 4 KiB": ('(import "plurigrid" "send" (func $h (param i32 i32 i32 i32) (result i32)))',
                        "(loop $l (drop (call $h (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4096))) (br $l))",
                        ("send",)),
    "WASI random_get 64 KiB": ('(import "wasi_snapshot_preview1" "random_get" (func $h (param i32 i32) (result i32)))',
                               "(loop $l (drop (call $h (i32.const 0) (i32.const 65536))) (br $l))", ("wasi",)),
    "WASI clock_time_get": ('(import "wasi_snapshot_preview1" "clock_time_get" (func $h (param i32 i64 i32) (result i32)))',
                            "(loop $l (drop (call $h (i32.const 0) (i64.const 1) (i32.const 0))) (br $l))", ("wasi",)),
}

# WASI file functions over a granted directory holding big.bin (8 MiB) and many/ (500 empty files)
_OPEN = '(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))'
_OPEN_BIG = ("(drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 7) (i32.const 0) (i64.const 6) "
             "(i64.const 0) (i32.const 0) (i32.const 200)))")
_OPEN_MANY = ("(drop (call $open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 4) (i32.const 2) (i64.const 16384) "
              "(i64.const 16384) (i32.const 0) (i32.const 200)))")
_NAMES = '(data (i32.const 100) "big.bin") (data (i32.const 120) "many")'
WASI_FILES: dict[str, tuple[str, str]] = {
    "WASI fd_pread of 8 MiB (64 KiB a call)": (
        _OPEN + '(import "wasi_snapshot_preview1" "fd_pread" (func $h (param i32 i32 i32 i64 i32) (result i32)))' + _NAMES,
        _OPEN_BIG + "(i32.store (i32.const 208) (i32.const 65536)) (i32.store (i32.const 212) (i32.const 8388608)) "
        "(loop $l (drop (call $h (i32.load (i32.const 200)) (i32.const 208) (i32.const 1) (i64.const 0) (i32.const 216))) (br $l))"),
    "WASI fd_readdir of 500 entries": (
        _OPEN + '(import "wasi_snapshot_preview1" "fd_readdir" (func $h (param i32 i32 i32 i64 i32) (result i32)))' + _NAMES,
        _OPEN_MANY + "(loop $l (drop (call $h (i32.load (i32.const 200)) (i32.const 65536) (i32.const 65536) (i64.const 0) "
        "(i32.const 216))) (br $l))"),
}


def module_text(fields: str, body: str) -> str:
    return (f'(module {fields} (memory (export "memory") {MEMORY_PAGES}) {_ALLOC} '
            f'(func (export "decide") (param i32 i32) (result i64) {body} (i64.const 0)))')


def rate(name: str, fields: str, body: str, grants: tuple[str, ...], fuel: int, repeat: int) -> tuple[float, str]:
    """Fuel per second of one hostile module (the best of `repeat` calls) and how its calls end."""
    instance = ModuleInstance(compile_module(module_text(fields, body).encode(), name), grants, Limits(fuel=fuel),
                              deadline_ms=10**9)  # the backstop must not cut the measurement short
    instance.context.prices_json = b"[" + b"0.1234," * 585 + b"0]"  # ~4 KiB
    best, error = float("inf"), ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = instance.call("decide", b"{}")
        best = min(best, time.perf_counter() - t0)
        error = result.error or "ok"
        assert result.fuel_used == fuel, (name, result)
    return fuel / best, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fuel", type=int, default=20_000_000, help="fuel per call (default 20 million)")
    parser.add_argument("--repeat", type=int, default=3, help="calls per module; the fastest counts (default 3)")
    args = parser.parse_args()
    rates = {name: rate(name, fields, body, grants, args.fuel, args.repeat) for name, (fields, body, grants) in HOSTILE.items()}
    baseline = rates["arithmetic (baseline)"][0]
    print(f"Fuel rates, {args.fuel:,} fuel per call, best of {args.repeat}; host functions cost {HOST_CALL_FUEL:,} + 1 per byte\n")
    print("| module | Mfuel/s | × baseline | ends with |\n|---|---:|---:|---|")
    for name, (per_s, error) in sorted(rates.items(), key=lambda item: item[1][0]):
        print(f"| {name} | {per_s / 1e6:,.1f} | {per_s / baseline:.3f} | {error} |")
    slowest_name, (slowest, _) = min(rates.items(), key=lambda item: item[1][0])
    default = Limits()
    worst_s = default.fuel / slowest
    print(f"\nslowest: {slowest_name} at {slowest / 1e6:,.1f} Mfuel/s; WORST_FUEL_PER_S = {WORST_FUEL_PER_S / 1e6:,.1f} M")
    print(f"default fuel {default.fuel:,}: at most {worst_s * 1e3:,.1f} ms here; backstop {default.deadline_ms:,} ms "
          f"({default.deadline_ms / 1e3 / worst_s:,.0f} × that; BACKSTOP_FACTOR {BACKSTOP_FACTOR})")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "big.bin").write_bytes(bytes(8 << 20))
        (Path(folder) / "many").mkdir()
        for i in range(500):
            (Path(folder) / "many" / f"entry{i:03d}").touch()
        fuel = 10_000  # these are slow: a few thousand calls each
        print(f"\nNot bounded by fuel ({fuel:,} fuel per call): wasmtime's WASI file functions, one unit a call\n")
        print("| module | Mfuel/s | default fuel would last |\n|---|---:|---:|")
        for name, (fields, body) in WASI_FILES.items():
            per_s, _ = rate(name, fields, body, ("wasi", f"wasi-dir:{folder}"), fuel, 1)
            print(f"| {name} | {per_s / 1e6:,.3f} | {default.fuel / per_s:,.0f} s |")
    if slowest < WORST_FUEL_PER_S:
        print(f"WORST_FUEL_PER_S is above the slowest rate measured here: lower it to {slowest:,.0f} or less")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
