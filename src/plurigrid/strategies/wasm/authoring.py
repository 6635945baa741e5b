"""Authoring of WASM strategy modules: a template project per language, and the build that turns a
project into a module the host can run.

A module project is a folder with a manifest `NAME.toml` and sources in one language. `build_module`
compiles it with that language's toolchain into `NAME.wasm` beside the manifest (where the host looks
for it) and records the file's sha256 in the manifest, so a world runs exactly the module that was
built. Every failure (a missing toolchain, a compiler error, a module without the ABI's exports, a
manifest the host would refuse) is an `AuthoringError` with one line for people.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import wasmtime

from plurigrid.errors import PlurigridError
from plurigrid.strategies.wasm.host import IBC_EXPORTS
from plurigrid.strategies.wasm.manifest import ManifestError, parse_manifest

LANGUAGES = ("c", "wat", "assemblyscript", "rust")
IBC_LANGUAGES = ("c",)
REQUIRED_EXPORTS = ("memory", "alloc", "decide")

_TEMPLATES = Path(__file__).parent / "templates"
C_TEMPLATE = _TEMPLATES / "c"  # also the home of the shared C ABI helpers
C_ABI_SOURCE = "abi.c"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_BUILD_TIMEOUT_S = 300
_C_PACKAGES = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
_RUST_PACKAGES = "apt-get install rustc libstd-rust-dev-wasm32 lld"
_RUST_TARGETS = ("wasm32-unknown-unknown", "wasm32-wasip1", "wasm32-wasi")
_LOCATION = re.compile(r"[\w./-]+\.(?:c|h|rs|ts|wat)(?::\d+:\d+|\(\d+,\d+\))")


class AuthoringError(PlurigridError):
    """A module project that cannot be created or built; the message is one line for people."""


def new_module(name: str, lang: str, dest: Path, ibc: bool = False) -> Path:
    """Writes a template project for module `name` in language `lang` into `dest` and returns `dest`.

    The template is a working self-consumption strategy (battery stores own PV surplus, covers own
    deficit, trades truthfully) with a manifest granting no capabilities; it builds as is. With `ibc`,
    it is an IBC application instead (a ping counter answering the six ibc_* entry points), granted `kv`.
    """
    if ibc and lang not in IBC_LANGUAGES:
        raise AuthoringError(f"--ibc: the IBC template is written in {', '.join(IBC_LANGUAGES)}, not {lang!r}")
    if lang not in LANGUAGES:
        raise AuthoringError(f"unknown module language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    if not _NAME.fullmatch(name):
        raise AuthoringError(f"invalid module name {name!r}: expected lowercase letters, digits and '-', "
                             "starting with a letter")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise AuthoringError(f"{dest} already exists and is not empty: choose a new folder")
    sources = _TEMPLATES / (f"{lang}-ibc" if ibc else lang)
    files = [(path, path.relative_to(sources)) for path in sorted(sources.rglob("*")) if path.is_file()]
    files.append((_TEMPLATES / "module.toml", Path(f"{name}.toml")))
    for source, relative in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text().replace("{{name}}", name)
        if ibc and relative.suffix == ".toml":
            text = text.replace("capabilities = []", 'capabilities = ["kv"]')
        target.write_text(text)
    return dest


def build_module(src_dir: Path) -> Path:
    """Builds the module project in `src_dir`: writes `NAME.wasm`, records its sha256 in `NAME.toml`,
    and returns the `.wasm` path. Both are replaced only by a build that succeeded."""
    manifest_path = _find_manifest(src_dir)
    name = manifest_path.stem
    lang = detect_language(src_dir)
    with tempfile.TemporaryDirectory(prefix="plurigrid-build-") as tmp:
        built = Path(tmp) / "module.wasm"
        _BUILDERS[lang](src_dir, built, name)
        wasm = built.read_bytes()
    _check_exports(wasm, src_dir)
    digest = hashlib.sha256(wasm).hexdigest()
    manifest_text = _with_sha256(manifest_path.read_text(), digest)
    try:
        parse_manifest(tomllib.loads(manifest_text), manifest_path)
    except ManifestError as err:
        raise AuthoringError(str(err)) from None
    out = src_dir / f"{name}.wasm"
    out.write_bytes(wasm)
    manifest_path.write_text(manifest_text)
    return out


def detect_language(src_dir: Path) -> str:
    """The language of the project's sources: `*.c` files, one `*.wat`, `lib.rs` or `assembly/index.ts`."""
    found = [lang for lang, present in (
        ("c", any(src_dir.glob("*.c"))),
        ("wat", any(src_dir.glob("*.wat"))),
        ("assemblyscript", (src_dir / "assembly" / "index.ts").is_file()),
        ("rust", (src_dir / "lib.rs").is_file()),
    ) if present]
    if not found:
        raise AuthoringError(f"{src_dir}: no module sources (expected *.c, one *.wat, lib.rs or assembly/index.ts)")
    if len(found) > 1:
        raise AuthoringError(f"{src_dir}: sources in several languages ({', '.join(found)}): keep one")
    return found[0]


def missing_toolchain(lang: str, src_dir: Path | None = None) -> str | None:
    """Why `lang` cannot be built here (one line naming the tool and the package to install), or None;
    for tests and tools that check before building. `src_dir` lets an AssemblyScript project's own
    `node_modules` count.
    """
    if lang == "wat":
        return None
    if lang == "c":
        return _missing_c()
    if lang == "rust":
        return _missing_rust() if _rust_toolchain() is None else None
    if lang == "assemblyscript":
        return None if _asc(src_dir) else _missing_asc(src_dir)
    raise AuthoringError(f"unknown module language {lang!r}: expected one of {', '.join(LANGUAGES)}")


def _find_manifest(src_dir: Path) -> Path:
    """The project's manifest: its one `NAME.toml`, with `name = "NAME"` inside."""
    found = sorted(src_dir.glob("*.toml"))
    if not found:
        raise AuthoringError(f"{src_dir}: no manifest NAME.toml (start a project with `plurigrid module new`)")
    if len(found) > 1:
        raise AuthoringError(f"{src_dir}: several manifests ({', '.join(p.name for p in found)}): keep one")
    path = found[0]
    try:
        name = tomllib.loads(path.read_text()).get("name")
    except tomllib.TOMLDecodeError as err:
        raise AuthoringError(f"{path}: not valid TOML: {err}") from None
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AuthoringError(f"{path}: name: expected lowercase letters, digits and '-', starting with a letter")
    if path.stem != name:
        raise AuthoringError(f"{path}: name: {name!r} must match the file name, {name}.toml (the host looks "
                             f"for it beside {name}.wasm)")
    return path


def _with_sha256(text: str, digest: str) -> str:
    """The manifest text with its top-level `sha256` set to `digest`; the rest stays as written."""
    line = f'sha256 = "{digest}"'
    updated, count = re.subn(r'^sha256[ \t]*=[ \t]*"[^"\n]*"', line, text, count=1, flags=re.MULTILINE)
    if count:
        return updated
    table = re.search(r"^\[", text, flags=re.MULTILINE)
    at = table.start() if table else len(text)
    head = text[:at] if not text[:at] or text[:at].endswith("\n") else text[:at] + "\n"
    return head + line + "\n" + text[at:]


def _check_exports(wasm: bytes, src_dir: Path) -> None:
    """Refuses a build the host could not call: invalid WebAssembly, or an ABI-1 export missing."""
    try:
        module = wasmtime.Module(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as err:
        raise AuthoringError(f"{src_dir}: the toolchain wrote an invalid module: {_first_error(str(err))}") from None
    exports = {export.name for export in module.exports}
    required = ("memory", "alloc", *IBC_EXPORTS) if exports & set(IBC_EXPORTS) else REQUIRED_EXPORTS
    missing = [name for name in required if name not in exports]
    if missing:
        raise AuthoringError(f"{src_dir}: the built module does not export {', '.join(missing)} "
                             f"({'an IBC module' if required != REQUIRED_EXPORTS else 'ABI 1'} needs {', '.join(required)})")


def _first_error(output: str) -> str:
    """The first error line of a compiler's output, with the source location if it is on a later line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "no message"
    at = next((i for i, line in enumerate(lines) if "error" in line.lower()), 0)
    message = lines[at]
    if not _LOCATION.search(message):
        location = next((m.group(0) for line in lines[at + 1:] if (m := _LOCATION.search(line))), None)
        if location:
            message += f" (at {location})"
    return message


def _run(command: list[str], src_dir: Path, lang: str) -> None:
    """Runs a compiler in `src_dir`; its first error line becomes the AuthoringError."""
    try:
        done = subprocess.run(command, cwd=src_dir, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AuthoringError(f"{lang} build of {src_dir} took longer than {_BUILD_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise AuthoringError(f"{lang} build of {src_dir} failed: {_first_error(done.stderr + done.stdout)}")


def _build_wat(src_dir: Path, out: Path, name: str) -> None:
    sources = sorted(src_dir.glob("*.wat"))
    if len(sources) != 1:
        raise AuthoringError(f"{src_dir}: expected one .wat file, found {len(sources)}")
    try:
        out.write_bytes(wasmtime.wat2wasm(sources[0].read_text()))
    except wasmtime.WasmtimeError as err:
        message = str(err).replace("<anon>", sources[0].name)
        raise AuthoringError(f"wat build of {src_dir} failed: {_first_error(message)}") from None


def _build_c(src_dir: Path, out: Path, name: str) -> None:
    """A freestanding reactor: no entry point, exports set in the source with `export_name`."""
    missing = _missing_c()
    if missing:
        raise AuthoringError(missing)
    sources = [path.name for path in sorted(src_dir.glob("*.c"))]
    # the ABI helpers (abi.c, abi.h) come from the package unless the project carries its own copy
    shared = [] if (src_dir / C_ABI_SOURCE).is_file() else [str(C_TEMPLATE / C_ABI_SOURCE)]
    _run(["clang", "--target=wasm32-wasi", "-O2", "-nostartfiles", "-Wl,--no-entry", "-Wl,--strip-all",
          f"-I{C_TEMPLATE}", "-o", str(out), *shared, *sources], src_dir, "c")


def _build_rust(src_dir: Path, out: Path, name: str) -> None:
    toolchain = _rust_toolchain()
    if toolchain is None:
        raise AuthoringError(_missing_rust())
    rustc, target = toolchain
    _run([rustc, "--target", target, "--crate-type", "cdylib", "--edition", "2021", "-O", "-C", "panic=abort",
          "-C", "strip=symbols", "--crate-name", name.replace("-", "_"), "-o", str(out), "lib.rs"], src_dir, "rust")


def _build_assemblyscript(src_dir: Path, out: Path, name: str) -> None:
    asc = _asc(src_dir)
    if asc is None:
        raise AuthoringError(_missing_asc(src_dir))
    _run([asc, "assembly/index.ts", "--outFile", str(out), "-O", "--noAssert", "--use", "abort=", "--noColors"],
         src_dir, "assemblyscript")


_BUILDERS: dict[str, Callable[[Path, Path, str], None]] = {
    "c": _build_c,
    "wat": _build_wat,
    "rust": _build_rust,
    "assemblyscript": _build_assemblyscript,
}


def _missing_c() -> str | None:
    if shutil.which("clang") is None:
        return f"clang not found: install the C toolchain with `{_C_PACKAGES}`"
    if shutil.which("wasm-ld") is None:
        return "wasm-ld (the WebAssembly linker) not found: `apt-get install lld`"
    libc = _clang_print("-print-file-name=libc.a")
    if not Path(libc).is_absolute():
        return "the WASI C library for wasm32 not found: `apt-get install wasi-libc`"
    if not Path(_clang_print("-print-libgcc-file-name")).is_file():
        return "compiler-rt builtins for wasm32 not found: `apt-get install libclang-rt-dev-wasm32`"
    return None


def _clang_print(flag: str) -> str:
    done = subprocess.run(["clang", "--target=wasm32-wasi", flag], capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def _rust_toolchain() -> tuple[str, str] | None:
    """(rustc, target) for the first rustc that has a wasm32 standard library: `$RUSTC`, `rustc` on the
    PATH, then Debian's /usr/bin/rustc (which a rustup install on the PATH hides)."""
    candidates = [os.environ.get("RUSTC"), shutil.which("rustc"), "/usr/bin/rustc"]
    for rustc in dict.fromkeys(c for c in candidates if c and shutil.which(c)):
        done = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            continue
        sysroot = Path(done.stdout.strip())
        for target in _RUST_TARGETS:
            if (sysroot / "lib" / "rustlib" / target / "lib").is_dir():
                return rustc, target
    return None


def _missing_rust() -> str:
    if not any(shutil.which(c) for c in ("rustc", "/usr/bin/rustc")):
        return f"rustc not found: `{_RUST_PACKAGES}`"
    return f"no rustc here has the wasm32 standard library: `{_RUST_PACKAGES}` (or `rustup target add wasm32-unknown-unknown`)"


def _asc(src_dir: Path | None) -> str | None:
    """The AssemblyScript compiler: the project's own (after `npm install`), else `asc` on the PATH."""
    local = src_dir / "node_modules" / ".bin" / "asc" if src_dir else None
    return str(local.resolve()) if local and local.is_file() else shutil.which("asc")


def _missing_asc(src_dir: Path | None) -> str:
    where = f"in {src_dir}" if src_dir else "in the project"
    if shutil.which("npm") is None:
        return f"npm not found: `apt-get install npm`, then run `npm install` {where}"
    return f"the AssemblyScript compiler asc not found: run `npm install` {where} (or `npm install -g assemblyscript`)"
