"""Builds the native core of the verifiable store (src/plurigrid/state/_native.c) with the machine's C
compiler against the platform's OpenSSL (libcrypto, Debian's libssl-dev); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "plurigrid.state._native",
    sources=["src/plurigrid/state/_native.c"],
    libraries=["crypto"],
    extra_compile_args=["-O3", "-std=c11", "-pthread"],
    extra_link_args=["-pthread"],
)])
