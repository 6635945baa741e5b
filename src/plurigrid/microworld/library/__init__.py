"""The library of built-in microworlds (one TOML file each)."""
