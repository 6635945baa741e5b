"""Shared test fixtures: where the external reference data (oracles) lives."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def testdata() -> Path:
    """`$PLURIGRID_TESTDATA` (default ../shared/data); skip if absent unless oracles are required."""
    root = Path(os.environ.get("PLURIGRID_TESTDATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not root.is_dir():
        if os.environ.get("PLURIGRID_REQUIRE_ORACLES") == "1":
            pytest.fail(f"reference data not found at {root} but PLURIGRID_REQUIRE_ORACLES=1")
        pytest.skip(f"reference data not found at {root} (set PLURIGRID_TESTDATA)")
    return root


@pytest.fixture(scope="session", autouse=True)
def _signer_key(tmp_path_factory) -> None:
    """Runs sign their ledgers with a key of the test session (the same in every run and subprocess of it),
    not with the user's own key in ~/.config."""
    if "PLURIGRID_SIGNER_KEY" not in os.environ:
        os.environ["PLURIGRID_SIGNER_KEY"] = str(tmp_path_factory.mktemp("signer") / "signer.key")
