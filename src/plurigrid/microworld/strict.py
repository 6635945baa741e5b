"""The base of every model of a microworld file (and of the files that share its rules, such as NODE.toml)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base model: unknown keys are errors, and so are NaN and infinity in any number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
