"""The names a microworld may choose from (strategies, mechanisms, kinds of participant), without pydantic.

Why a module of its own: the CLI lists them in its help, which must not wait for the spec models to load.
"""

STRATEGIES = (
    "passive",
    "truthful",
    "zero-intelligence",
    "self-consumption",
    "battery-arbitrage",
    "demand-response",
)
STRATEGY_CHOICES = STRATEGIES + ("module",)  # built-ins, or a sandboxed WASM module
MECHANISMS = ("tariff", "pay-as-clear", "pay-as-bid", "vcg", "second-price", "k-price", "opf")
KINDS = (
    "household",
    "business",
    "datacenter",
    "kiosk",
    "utility",
    "farm",
    "producer",
    "building",
    "community",
)
