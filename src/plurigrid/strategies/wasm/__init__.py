"""Strategies as sandboxed WebAssembly modules (docs/modules.md).

`capabilities` says which grant each import needs, `manifest` reads a module's manifest and
narrows it by a spec's grants and limits, `host` compiles modules and runs their calls under
fuel, memory and output limits, with a wall-clock backstop derived from the fuel.
"""
