"""The tour of the offline datasets (``notebooks/00-datasets``)."""
from __future__ import annotations

from dataclasses import dataclass

from .. import profiles

__all__ = ["Tour"]


@profiles.experiment("datasets", pages=("00-datasets",))
@dataclass(frozen=True)
class Tour:
    """How much of each dataset the tour shows."""

    n: int = profiles.size("examples shown of the dataset looked at closely", unit="images")
