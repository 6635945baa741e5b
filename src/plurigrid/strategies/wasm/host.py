"""Run participant strategies compiled to WebAssembly: sandboxed, capability-gated, with hard limits.

The contract is docs/modules.md (ABI 1). One wasmtime Engine per process counts fuel (a
deterministic instruction budget) and checks an epoch deadline that a 1 ms ticker thread
advances. Fuel is the limit that decides a call's outcome: host functions charge it too (a
fixed cost per call plus one unit per byte they move), and the Wasm features whose cost per fuel
unit has no useful bound (exceptions, GC) are off, so fuel bounds a call's time on any machine.
The deadline is only a backstop far above that bound (`Limits.deadline_ms`); a call that hits it
ran slow for reasons outside the module's input, which the engine records as a host fault.
WASI's clocks answer simulation time and its random bytes come from a seeded stream, so a module
granted `wasi` cannot read the wall clock or the OS's entropy either.

Each `ModuleInstance` owns a Store with a memory limit and a Linker that defines only the host
functions its grants allow, so an ungranted or unknown import fails before any module code runs.
A call never raises for anything the module does: traps, limit hits and bad output come back as a
`CallResult` whose `error` is one short reason.

The per-call path calls wasmtime's C API directly through ctypes (`wasmtime_func_call_unchecked`
on exports whose types were checked at load) because `Func.__call__` costs ~60 µs; the direct
path is ~5 µs. That code touches a few private names of wasmtime-py, all in the `_native` block.
An instance is not thread-safe: call it from one thread at a time.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import json.scanner
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import wasmtime
import wasmtime._func as _wasmtime_func
from wasmtime import _ffi

from plurigrid.errors import PlurigridError
from plurigrid.strategies.wasm.capabilities import (
    HOST_IMPORTS,
    HOST_MODULE,
    WASI_DIR_PREFIX,
    WASI_MODULE,
    Import,
    check_imports,
    grant_problems,
    signature_text,
)
from plurigrid.strategies.wasm.manifest import Limits

ALLOC_SIGNATURE = "(i32) -> (i32)"
HANDLER_SIGNATURE = "(i32, i32) -> (i64)"
LIFECYCLE_EXPORTS: tuple[str, ...] = ("init", "on_event", "on_offline", "on_online")
# an IBC application module (docs/modules.md, "IBC entry points") exports all six, in CosmWasm's shapes, and may
# export `reply` for its sub-messages; it need not export `decide`
IBC_EXPORTS: tuple[str, ...] = ("ibc_channel_open", "ibc_channel_connect", "ibc_channel_close", "ibc_packet_receive",
                                "ibc_packet_ack", "ibc_packet_timeout")
HANDLERS: tuple[str, ...] = ("decide", *LIFECYCLE_EXPORTS, *IBC_EXPORTS, "reply")
DECISION_NUMBERS: frozenset[str] = frozenset(
    {"battery_kw", "ev_kw", "shift_kw", "serve_kw", "bid_eur_per_kwh", "ask_eur_per_kwh"})
DECISION_FLAGS: frozenset[str] = frozenset({"trade"})

KV_CAP_BYTES = 64 << 10  # keys + values of one module's store
LOG_MAX_LINES = 100  # per context (the engine drains it each step)
LOG_MAX_CHARS = 1000  # longer lines are cut
OUTBOX_MAX_MESSAGES = 16  # per context
MESSAGE_MAX_BYTES = 4096
EPOCH_TICK_S = 0.001  # one epoch per millisecond, so a deadline in ms is a number of epochs
DEADLINE = "deadline"  # the error of a call stopped by the wall-clock backstop: a host fault, not the module's doing
# What a host function call costs in fuel: this fixed part (a call costs ~10 µs of Python, in which
# plain Wasm burns over 10,000 units) plus one unit per byte it reads or writes in the module's memory
# (as wasmtime charges memory.copy). benchmarks/bench_fuel.py measures the rates that result.
HOST_CALL_FUEL = 10_000
LOG_READ_BYTES = 4 * LOG_MAX_CHARS + 4  # enough UTF-8 for the characters a log line keeps
WASI_CLOCKS = 4  # realtime, monotonic, process and thread CPU time: all answer simulation time
# the WASI functions the host answers itself (`ModuleInstance._wasi_<name>`), with their types
_OWN_WASI = {"clock_res_get": "(i32, i32) -> (i32)", "clock_time_get": "(i32, i64, i32) -> (i32)",
             "random_get": "(i32, i32) -> (i32)", "poll_oneoff": "(i32, i32, i32, i32) -> (i32)"}
_WASI_ERRNO_INVAL, _WASI_ERRNO_NOSYS = 28, 52
WASI_GUEST_DIR = "/data"  # where a `wasi-dir:PATH` grant appears inside the module
_PAGE_BYTES = 65536
_U32 = 0xFFFFFFFF


class ModuleError(PlurigridError, ValueError):
    """A module that cannot be loaded or instantiated as given: one line, "MODULE: problem"."""


class HostFault(Exception):
    """Raised inside a host function when the module passed something invalid; becomes `trap: <message>`."""


class _OutOfFuel(HostFault):
    """Raised inside a host function whose cost is more than the call's fuel left; becomes `fuel exhausted`."""


# --- _native: the fast call path (private wasmtime-py names live only here) ---------------------

def _entry(name: str, restype: Any, *argtypes: Any) -> Any:
    """A fresh ctypes prototype of a wasmtime C function (not wasmtime-py's shared one), ints for pointers.

    It releases the GIL while it runs: module code runs there, and the epoch ticker needs the GIL.
    """
    function = _ffi.dll[name]
    function.restype, function.argtypes = restype, argtypes
    return function


def _accessor(name: str, restype: Any, *argtypes: Any) -> Any:
    """Like `_entry` for a function that only reads or sets a field of a store: it keeps the GIL (cheaper)."""
    address = ctypes.cast(_ffi.dll[name], ctypes.c_void_p).value
    return ctypes.PYFUNCTYPE(restype, *argtypes)(address)  # type: ignore[arg-type]  # a symbol's address is never NULL


_P, _N = ctypes.c_void_p, ctypes.c_size_t
_call_unchecked = _entry("wasmtime_func_call_unchecked", _P, _P, _P, _P, _N, _P)
_memory_data = _accessor("wasmtime_memory_data", _P, _P, _P)
_memory_size = _accessor("wasmtime_memory_data_size", _N, _P, _P)
_set_fuel = _accessor("wasmtime_context_set_fuel", _P, _P, ctypes.c_uint64)
_get_fuel = _accessor("wasmtime_context_get_fuel", _P, _P, _P)
_set_deadline = _accessor("wasmtime_context_set_epoch_deadline", None, _P, ctypes.c_uint64)


def _trap_of(trap_address: int) -> wasmtime.Trap:
    return wasmtime.Trap._from_ptr(ctypes.cast(trap_address, ctypes.POINTER(_ffi.wasm_trap_t)))


def _error_of(error_address: int) -> wasmtime.WasmtimeError:
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(error_address, ctypes.POINTER(_ffi.wasmtime_error_t)))


def _take_host_exception() -> BaseException | None:
    """The exception a host function raised during the last call (wasmtime-py parks it in a global)."""
    exc, _wasmtime_func.LAST_EXCEPTION = _wasmtime_func.LAST_EXCEPTION, None
    return exc


# --- the shared engine --------------------------------------------------------------------------

_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()


def shared_engine() -> wasmtime.Engine:
    """The process's one Engine (fuel + epochs, NaN-canonical floats, no threads), its ticker started."""
    global _engine
    with _engine_lock:
        if _engine is None:
            config = wasmtime.Config()
            config.consume_fuel = True
            config.epoch_interruption = True
            config.cranelift_nan_canonicalization = True  # same float bits on every node
            config.wasm_threads = False
            config.wasm_relaxed_simd = False  # results may differ across CPUs
            # each of these runs far longer per fuel unit than plain code (a caught throw ~50 ns,
            # a GC allocation with its collections unbounded), so fuel would no longer bound time
            config.wasm_exceptions = False
            config.wasm_gc = False
            # Small address-space reservations so thousands of stores fit (and a Pi's 39-bit space):
            # bounds checks become explicit, and memory beyond 16 MiB moves when it grows.
            config.memory_reservation = Limits().memory_bytes
            config.memory_reservation_for_growth = Limits().memory_bytes
            config.memory_guard_size = _PAGE_BYTES
            _engine = wasmtime.Engine(config)
            _start_ticker(_engine)
        return _engine


def _start_ticker(engine: wasmtime.Engine) -> None:
    def tick() -> None:
        while True:
            time.sleep(EPOCH_TICK_S)
            engine.increment_epoch()

    threading.Thread(target=tick, name="plurigrid-wasm-epoch", daemon=True).start()


def _restart_ticker_after_fork() -> None:
    if _engine is not None:  # threads do not survive fork; the deadline needs one in the child too
        _start_ticker(_engine)


os.register_at_fork(after_in_child=_restart_ticker_after_fork)


# --- compiling ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CompiledModule:
    """A validated, compiled module with its content hash and the types of its imports and exports."""

    module: wasmtime.Module
    sha256: str  # of the binary (.wat text is hashed after conversion)
    name: str  # file name, for messages
    imports: tuple[Import, ...]
    exports: Mapping[str, str]  # export name -> function signature, or memory/table/global

    def abi_problems(self) -> list[str]:
        """What keeps this module from speaking ABI 1 (missing or mistyped exports)."""
        problems = []
        if self.exports.get("memory") != "memory":
            problems.append("missing export 'memory' (its linear memory)")
        ibc = any(name in self.exports for name in IBC_EXPORTS)
        for name, expected in (("alloc", ALLOC_SIGNATURE), *((n, HANDLER_SIGNATURE) for n in (IBC_EXPORTS if ibc else ("decide",)))):
            if name not in self.exports:
                problems.append(f"missing export '{name}' {expected}" + (" (an IBC module exports all six ibc_* entry points)"
                                                                         if ibc and name != "alloc" else ""))
        for name, expected in (("alloc", ALLOC_SIGNATURE),) + tuple((h, HANDLER_SIGNATURE) for h in HANDLERS):
            got = self.exports.get(name)
            if got is not None and got != expected:
                problems.append(f"export '{name}' has type {got}, expected {expected}")
        return problems


_compiled: dict[str, wasmtime.Module] = {}
_compiled_lock = threading.Lock()


def compile_module(source: Path | str | bytes, name: str | None = None) -> CompiledModule:
    """Compile a module from a file path (.wasm or .wat) or its bytes; compiled once per content hash."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModuleError(f"{path}: cannot read: {exc.strerror or exc}") from None
    else:
        name, data = name or "<bytes>", bytes(source)
    if not data.startswith(b"\0asm"):
        try:
            data = bytes(wasmtime.wat2wasm(data.decode("utf-8")))
        except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
            raise ModuleError(f"{name}: not a WebAssembly module (binary or text): {_first_line(exc)}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    with _compiled_lock:
        module = _compiled.get(sha256)
        if module is None:
            try:
                module = wasmtime.Module(shared_engine(), data)
            except wasmtime.WasmtimeError as exc:
                raise ModuleError(f"{name}: not a valid WebAssembly module: {_first_line(exc)}") from None
            _compiled[sha256] = module
    imports = tuple(Import(i.module, i.name or "", _type_text(i.type)) for i in module.imports)
    exports = {e.name: _type_text(e.type) for e in module.exports}
    return CompiledModule(module, sha256, name, imports, exports)


def _type_text(ty: Any) -> str:
    if isinstance(ty, wasmtime.FuncType):
        return signature_text((str(p) for p in ty.params), (str(r) for r in ty.results))
    return {wasmtime.MemoryType: "memory", wasmtime.TableType: "table", wasmtime.GlobalType: "global"}.get(type(ty), "other")


def _func_type(signature: str) -> wasmtime.FuncType:
    params, results = (part.strip("()") for part in signature.split(" -> "))
    valtype = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64, "f64": wasmtime.ValType.f64}
    return wasmtime.FuncType([valtype[p]() for p in params.split(", ") if p],
                             [valtype[r]() for r in results.split(", ") if r])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


# --- calls --------------------------------------------------------------------------------------

@dataclass
class HostContext:
    """What the host functions return during a call, and where their effects go; the engine sets it per step."""

    now_ms: int = 0  # simulation time, ms since the Unix epoch
    meter_kwh: float = 0.0  # the participant's metered net energy of the last step
    forecast_json: bytes = b'{"load_kw":[],"renewable_kw":[]}'
    prices_json: bytes = b'{"import_eur_per_kwh":[],"export_eur_per_kwh":[]}'
    log_lines: list[str] = field(default_factory=list)  # at most LOG_MAX_LINES, each at most LOG_MAX_CHARS
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # (to participant, message) from `send`
    setpoints: list[float] = field(default_factory=list)  # battery power commands (W, + charging) from `set_setpoint`


class CallResult(NamedTuple):
    """The outcome of one call; `error` is one of `fuel exhausted`, `memory limit`, `trap: …`, `invalid output: …`
    (the module's doing, deterministic) or `deadline` (the wall-clock backstop: the host's).

    A named tuple rather than a frozen dataclass: made once per call, it costs well under half as much.
    """

    ok: bool
    output: bytes | None
    error: str | None
    fuel_used: int  # deterministic: same module, state and input give the same count
    seconds: float  # wall clock, for reports only


encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # the ABI's JSON: compact, no NaN
# what json.loads uses: (value, end) from (text, start); typeshed wants a make_scanner as its context, it reads a decoder's fields
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_JSON_BLANKS = " \t\n\r"  # what json.loads allows around the value


class ModuleInstance:
    """One participant's running module: its Store, granted host functions, kv store and limits.

    `seed` starts the stream WASI's `random_get` reads (the engine derives it from the world's seed
    and the participant). `deadline_ms` replaces the wall-clock backstop `limits.deadline_ms`
    (derived from the fuel limit): only for checking the backstop itself, as a lower one lets the
    machine's speed decide outcomes.
    """

    def __init__(self, compiled: CompiledModule, grants: Iterable[str] = (), limits: Limits = Limits(),
                 kv: MutableMapping[bytes, bytes] | None = None, *, seed: int = 0, deadline_ms: float | None = None) -> None:
        self.compiled, self.name, self.limits = compiled, compiled.name, limits
        self.deadline_ms = limits.deadline_ms if deadline_ms is None else deadline_ms
        self.grants = tuple(dict.fromkeys(grants))
        problems = grant_problems(self.grants) + check_imports(compiled.imports, self.grants) + compiled.abi_problems()
        if problems:
            raise ModuleError(f"{self.name}: {'; '.join(problems)}")
        self.kv: MutableMapping[bytes, bytes] = {} if kv is None else kv
        self.kv_changed()
        self.context = HostContext()
        self._memory: wasmtime.Memory | None = None
        self._random = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x77617369])))

        engine = shared_engine()
        self._store = wasmtime.Store(engine)
        self._ctx = ctypes.cast(self._store._context(), ctypes.c_void_p).value
        self._fuel = ctypes.c_uint64()
        self._fuel_ref = ctypes.addressof(self._fuel)
        self._deadline_ticks = max(1, math.ceil(self.deadline_ms / (EPOCH_TICK_S * 1000)))
        self._store.set_limits(memory_size=limits.memory_bytes, table_elements=1 << 20)
        self._store.set_fuel(limits.fuel)  # a start function runs under the same limits as a call
        self._store.set_epoch_deadline(self._deadline_ticks)
        linker = wasmtime.Linker(engine)
        self._define_host_functions(linker)
        if "wasi" in self.grants:
            self._define_wasi(linker)
        instance = self._instantiate(linker)

        exports = instance.exports(self._store)
        # exports are typed as any extern: abi_problems() above made sure these are the memory and functions
        self._memory = cast(wasmtime.Memory, exports["memory"])
        self._funcs = {name: cast(wasmtime.Func, exports[name]) for name in ("alloc", *HANDLERS) if name in compiled.exports}
        self._memory_ref = ctypes.addressof(self._memory._memory)
        self._handler_refs = {name: ctypes.addressof(f._func) for name, f in self._funcs.items() if name != "alloc"}
        self._alloc_ref = ctypes.addressof(self._funcs["alloc"]._func)
        self._decide_ref = self._handler_refs.get("decide", 0)  # 0: an IBC module without a strategy
        self._raw = (_ffi.wasmtime_val_raw * 2)()  # arguments in, results out
        self._raw_ref = ctypes.addressof(self._raw)
        self._arg0, self._arg1 = self._raw[0], self._raw[1]  # views of the two slots (indexing makes a new one)
        self._trap = ctypes.c_void_p()
        self._trap_ref = ctypes.addressof(self._trap)
        self._fuel_limit, self._output_cap = limits.fuel, limits.output_bytes

    def kv_changed(self) -> None:
        """Re-reads the kv store's size after its owner changed it (e.g. a ledger rolled a failed message back)."""
        self._kv_bytes = sum(len(k) + len(v) for k, v in self.kv.items())
        if self._kv_bytes > KV_CAP_BYTES:
            raise ValueError(f"{self.name}: kv holds {self._kv_bytes} bytes, more than the cap of {KV_CAP_BYTES}")

    def _instantiate(self, linker: wasmtime.Linker) -> wasmtime.Instance:
        try:
            return linker.instantiate(self._store, self.compiled.module)
        except wasmtime.Trap as trap:
            exc = _take_host_exception()
            raise ModuleError(f"{self.name}: start function failed: {self._reason(trap.trap_code, trap.message, exc)}") from None
        except wasmtime.WasmtimeError as exc:
            _take_host_exception()
            message = _first_line(exc)
            if "exceeds memory limits" in message:
                message = f"its initial memory exceeds the limit of {self.limits.memory_mb} MiB ({message})"
            raise ModuleError(f"{self.name}: cannot instantiate: {message}") from None

    def _wasi_config(self) -> wasmtime.WasiConfig:
        """WASI with no arguments, environment or stdio; at most one read-only directory if granted."""
        config = wasmtime.WasiConfig()
        dirs = [g[len(WASI_DIR_PREFIX):] for g in self.grants if g.startswith(WASI_DIR_PREFIX)]
        if len(dirs) > 1:
            raise ModuleError(f"{self.name}: at most one {WASI_DIR_PREFIX}PATH grant, got {len(dirs)}")
        for path in dirs:
            if not Path(path).is_dir():
                raise ModuleError(f"{self.name}: grant {WASI_DIR_PREFIX}{path}: not a directory")
            config.preopen_dir(path, WASI_GUEST_DIR, fs_mutable=False)
        return config

    # --- the call path

    def call(self, export: str, payload: bytes) -> CallResult:
        """Run one ABI handler on `payload` under the limits; never raises for what the module does."""
        func_ref = self._handler_refs.get(export)
        if func_ref is None:
            if export in LIFECYCLE_EXPORTS:  # optional handlers a module leaves out do nothing
                return CallResult(True, None, None, 0, 0.0)
            raise ValueError(f"{self.name}: {export!r} is not an ABI handler; expected one of {', '.join(HANDLERS)}")
        return self._call(func_ref, payload)

    def _call(self, func_ref: int, payload: bytes) -> CallResult:
        """`call` of a handler known to exist: alloc, copy in, handler, bounds-check and copy out.

        The per-call hot path, so the success checks of the two invocations are inline and the
        failure path (`_failure`) is a separate method.
        """
        start = time.perf_counter()
        ctx, memory, fuel, size = self._ctx, self._memory_ref, self._fuel_limit, len(payload)
        arg0, trap = self._arg0, self._trap
        _set_fuel(ctx, fuel)
        _set_deadline(ctx, self._deadline_ticks)
        output = None
        arg0.i32 = size
        fault = _call_unchecked(ctx, self._alloc_ref, self._raw_ref, 1, self._trap_ref)
        if fault is not None or trap.value is not None:
            error = self._failure(fault)
        else:
            ptr = arg0.i32 & _U32
            if ptr + size > _memory_size(ctx, memory):
                error = "invalid output: alloc returned an out-of-bounds pointer"
            else:
                ctypes.memmove(_memory_data(ctx, memory) + ptr, payload, size)
                arg0.i32, self._arg1.i32 = ptr, size
                fault = _call_unchecked(ctx, func_ref, self._raw_ref, 2, self._trap_ref)
                if fault is not None or trap.value is not None:
                    error = self._failure(fault)
                else:
                    packed = arg0.i64
                    out_ptr, out_len = (packed >> 32) & _U32, packed & _U32
                    if out_len > self._output_cap:
                        error = "invalid output: too large"
                    elif out_ptr + out_len > _memory_size(ctx, memory):
                        error = "invalid output: out of bounds"
                    else:
                        error, output = None, ctypes.string_at(_memory_data(ctx, memory) + out_ptr, out_len)
        _get_fuel(ctx, self._fuel_ref)
        return CallResult(error is None, output, error, fuel - self._fuel.value, time.perf_counter() - start)

    def _failure(self, error: int | None) -> str:
        """The reason a call into the module failed: a wasmtime error (its address) or the parked trap."""
        if error is not None:
            code, message = None, str(_error_of(error))
        else:
            assert self._trap.value is not None  # the callers come here on an error or a parked trap
            trap = _trap_of(self._trap.value)
            self._trap.value = None
            code, message = trap.trap_code, trap.message
        return self._reason(code, message, _take_host_exception())

    def _reason(self, code: wasmtime.TrapCode | None, message: str, host_exc: BaseException | None) -> str:
        """Map a trap to the short reasons of docs/modules.md."""
        if host_exc is not None:
            if isinstance(host_exc, _OutOfFuel):
                return "fuel exhausted"
            if isinstance(host_exc, HostFault):
                return f"trap: {host_exc}"
            raise host_exc  # a bug in a host function, not the module's doing
        if code is wasmtime.TrapCode.OUT_OF_FUEL:
            return "fuel exhausted"
        if code is wasmtime.TrapCode.INTERRUPT:
            return DEADLINE
        if self._memory_exhausted():
            return "memory limit"
        if code is None:
            return f"trap: {_first_line(Exception(message))}"
        return f"trap: {code.name.lower().replace('_', ' ')}"

    def _memory_exhausted(self) -> bool:
        """Whether the last growth would cross the limit: the store refuses `memory.grow` there (it returns -1)."""
        if self._memory is None:
            return False
        return _memory_size(self._ctx, self._memory_ref) + _PAGE_BYTES > self.limits.memory_bytes

    def decide(self, observation: Mapping[str, Any]) -> tuple[dict[str, float | bool] | None, CallResult]:
        """JSON observation in, validated decision out (None with `invalid output: …` when it is not one)."""
        try:
            payload = encode_json(observation).encode()
        except ValueError:
            bad = sorted(k for k, v in observation.items() if isinstance(v, float) and not math.isfinite(v))
            raise ValueError(f"{self.name}: observation has non-finite {', '.join(bad) or 'values'} (use null)") from None
        return self.decide_payload(payload)

    def decide_payload(self, payload: bytes) -> tuple[dict[str, float | bool] | None, CallResult]:
        """`decide` on an observation already encoded as compact JSON (the engine encodes a step's at once)."""
        result = self._call(self._decide_ref, payload)
        if not result.ok:
            return None, result
        assert result.output is not None  # a successful _call copies the output out
        try:
            return parse_decision(result.output), result
        except InvalidOutput as exc:
            return None, result._replace(ok=False, error=f"invalid output: {exc}")

    # --- host functions (each closes over this instance; `self.context` is read at call time)

    def _define_host_functions(self, linker: wasmtime.Linker) -> None:
        for name, (capability, signature) in HOST_IMPORTS.items():
            if capability in self.grants:
                linker.define_func(HOST_MODULE, name, _func_type(signature), getattr(self, f"_host_{name}"),
                                   access_caller=True)

    def _define_wasi(self, linker: wasmtime.Linker) -> None:
        """WASI preview 1 for a module granted `wasi`: wasmtime's, but for the clocks, entropy and sleep, which
        are this instance's functions of the simulation (`_wasi_*`, charged fuel like host functions)."""
        self._store.set_wasi(self._wasi_config())
        linker.define_wasi()
        linker.allow_shadowing = True
        for name, signature in _OWN_WASI.items():
            linker.define_func(WASI_MODULE, name, _func_type(signature), getattr(self, f"_wasi_{name}"), access_caller=True)
        linker.allow_shadowing = False

    def _charge(self, units: int) -> None:
        """Takes a host function's fuel from the call's budget; past the budget the call ends as `fuel exhausted`."""
        _get_fuel(self._ctx, self._fuel_ref)
        left = self._fuel.value
        if units > left:
            _set_fuel(self._ctx, 0)
            raise _OutOfFuel
        _set_fuel(self._ctx, left - units)

    def _check(self, caller: wasmtime.Caller, ptr: int, length: int, what: str) -> int:
        """The start of `length` bytes at `ptr` in the module's memory; traps when they are not all inside it."""
        ptr, length = ptr & _U32, length & _U32
        if self._memory is None or ptr + length > self._memory.data_len(caller):
            raise HostFault(f"{what}: pointer out of bounds")
        return ptr

    def _read(self, caller: wasmtime.Caller, ptr: int, length: int, what: str) -> bytes:
        ptr = self._check(caller, ptr, length, what)
        assert self._memory is not None  # _check traps without one
        return bytes(self._memory.read(caller, ptr, ptr + (length & _U32)))

    def _write(self, caller: wasmtime.Caller, ptr: int, data: bytes, what: str) -> None:
        ptr = self._check(caller, ptr, len(data), what)
        if data:
            assert self._memory is not None  # _check traps without one
            self._memory.write(caller, data, ptr)

    def _copy_out(self, caller: wasmtime.Caller, data: bytes, ptr: int, cap: int, what: str) -> int:
        if len(data) > cap & _U32:
            self._charge(HOST_CALL_FUEL)
            return -len(data)
        self._charge(HOST_CALL_FUEL + len(data))
        self._write(caller, ptr, data, what)
        return len(data)

    def _host_log(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        self._check(caller, ptr, length, "log")
        if len(self.context.log_lines) >= LOG_MAX_LINES:
            self._charge(HOST_CALL_FUEL)
            return
        kept = min(length & _U32, LOG_READ_BYTES)  # at most LOG_MAX_CHARS characters are kept
        self._charge(HOST_CALL_FUEL + kept)
        self.context.log_lines.append(self._read(caller, ptr, kept, "log").decode("utf-8", "replace")[:LOG_MAX_CHARS])

    def _host_now(self, caller: wasmtime.Caller) -> int:
        self._charge(HOST_CALL_FUEL)
        return int(self.context.now_ms)

    def _host_kv_get(self, caller: wasmtime.Caller, key_ptr: int, key_len: int, out_ptr: int, out_cap: int) -> int:
        self._charge(HOST_CALL_FUEL + (key_len & _U32))
        value = self.kv.get(self._read(caller, key_ptr, key_len, "kv_get"))
        if value is None:
            return -1
        value_out = value[:out_cap & _U32]
        self._charge(len(value_out))
        self._write(caller, out_ptr, value_out, "kv_get")
        return len(value)

    def _host_kv_put(self, caller: wasmtime.Caller, key_ptr: int, key_len: int, val_ptr: int, val_len: int) -> int:
        self._check(caller, key_ptr, key_len, "kv_put")
        self._check(caller, val_ptr, val_len, "kv_put")
        if (key_len & _U32) + (val_len & _U32) > KV_CAP_BYTES:  # over the cap whatever the store holds: not read
            self._charge(HOST_CALL_FUEL)
            return -1
        self._charge(HOST_CALL_FUEL + (key_len & _U32) + (val_len & _U32))
        key = self._read(caller, key_ptr, key_len, "kv_put")
        value = self._read(caller, val_ptr, val_len, "kv_put")
        old = self.kv.get(key)
        size = self._kv_bytes + len(key) + len(value) - (0 if old is None else len(key) + len(old))
        if size > KV_CAP_BYTES:
            return -1
        self.kv[key], self._kv_bytes = value, size
        return 0

    def _host_read_meter(self, caller: wasmtime.Caller) -> float:
        self._charge(HOST_CALL_FUEL)
        return float(self.context.meter_kwh)

    def _host_set_setpoint(self, caller: wasmtime.Caller, power_w: float) -> int:
        """Commands the participant's battery (W, + charging): the step's battery decision, and at a node the device's
        setpoint. 0, or -1 for a value that is not a finite power (nothing is recorded)."""
        self._charge(HOST_CALL_FUEL)
        if not math.isfinite(power_w) or abs(power_w) > 1e9:
            return -1
        self.context.setpoints.append(float(power_w))
        return 0

    def _host_forecast(self, caller: wasmtime.Caller, out_ptr: int, out_cap: int) -> int:
        return self._copy_out(caller, self.context.forecast_json, out_ptr, out_cap, "forecast")

    def _host_prices(self, caller: wasmtime.Caller, out_ptr: int, out_cap: int) -> int:
        return self._copy_out(caller, self.context.prices_json, out_ptr, out_cap, "prices")

    def _host_send(self, caller: wasmtime.Caller, to_ptr: int, to_len: int, msg_ptr: int, msg_len: int) -> int:
        self._check(caller, to_ptr, to_len, "send")
        self._check(caller, msg_ptr, msg_len, "send")
        outbox = self.context.outbox
        if not to_len & _U32 or msg_len & _U32 > MESSAGE_MAX_BYTES or len(outbox) >= OUTBOX_MAX_MESSAGES:
            self._charge(HOST_CALL_FUEL)
            return -1
        self._charge(HOST_CALL_FUEL + (to_len & _U32) + (msg_len & _U32))
        to = self._read(caller, to_ptr, to_len, "send")
        try:
            outbox.append((to.decode("utf-8"), self._read(caller, msg_ptr, msg_len, "send")))
        except UnicodeDecodeError:
            return -1
        return 0

    # --- WASI functions that would otherwise read the wall clock or the OS (WASI errno as the result)

    def _wasi_clock_res_get(self, caller: wasmtime.Caller, clock: int, out_ptr: int) -> int:
        self._charge(HOST_CALL_FUEL + 8)
        if not 0 <= clock < WASI_CLOCKS:
            return _WASI_ERRNO_INVAL
        self._write(caller, out_ptr, (1_000_000).to_bytes(8, "little"), "clock_res_get")  # 1 ms, like `now`
        return 0

    def _wasi_clock_time_get(self, caller: wasmtime.Caller, clock: int, precision: int, out_ptr: int) -> int:
        self._charge(HOST_CALL_FUEL + 8)
        if not 0 <= clock < WASI_CLOCKS:
            return _WASI_ERRNO_INVAL
        self._write(caller, out_ptr, (int(self.context.now_ms) * 1_000_000).to_bytes(8, "little", signed=True),
                    "clock_time_get")
        return 0

    def _wasi_random_get(self, caller: wasmtime.Caller, buf_ptr: int, buf_len: int) -> int:
        self._check(caller, buf_ptr, buf_len, "random_get")
        self._charge(HOST_CALL_FUEL + (buf_len & _U32))
        self._write(caller, buf_ptr, self._random.bytes(buf_len & _U32), "random_get")
        return 0

    def _wasi_poll_oneoff(self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, subscriptions: int,
                          events_ptr: int) -> int:
        self._charge(HOST_CALL_FUEL)
        return _WASI_ERRNO_NOSYS  # a module does not sleep: a simulated step has no wall-clock time to wait in


class InvalidOutput(ValueError):
    """Why a module's output is not a decision (the text after `invalid output: `)."""


def parse_decision(output: bytes) -> dict[str, float | bool]:
    """A decision object from UTF-8 JSON: numbers as floats, `trade` as bool; raise InvalidOutput otherwise.

    JSON is read as `json.loads` reads a str (its scanner; blanks allowed around the value, nothing
    else after it) without its per-call wrappers, and a finite float of a number field is accepted
    inline: this runs once per module participant and step.
    """
    try:
        text = output.decode("utf-8").strip(_JSON_BLANKS)
        value, end = _scan_json(text, 0)
    except (ValueError, RecursionError, StopIteration):  # bad UTF-8, bad JSON or none, absurd nesting
        raise InvalidOutput("not JSON") from None
    if end != len(text):
        raise InvalidOutput("not JSON")
    if type(value) is not dict:
        raise InvalidOutput("not an object")
    decision: dict[str, float | bool] = {}
    for key, item in value.items():
        if type(item) is float and key in DECISION_NUMBERS and item - item == 0.0:  # finite: inf - inf is NaN
            decision[key] = item
        else:
            decision[key] = _decision_field(key, item)
    return decision


def _decision_field(key: str, item: Any) -> float | bool:
    """One field of a decision, checked: a finite number as a float, or `trade` as a bool."""
    if key in DECISION_NUMBERS:
        if type(item) is not float and type(item) is not int:
            raise InvalidOutput(f"field {key} is not a number")
        try:
            number = float(item)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InvalidOutput(f"field {key} is not finite")
        return number
    if key in DECISION_FLAGS:
        if type(item) is not bool:
            raise InvalidOutput(f"field {key} is not a boolean")
        return item
    raise InvalidOutput(f"unknown field {key!r}")
