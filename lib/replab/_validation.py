"""Input checks with one message style: what was expected, what was given, and for which argument."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["as_tensor_2d", "check_finite", "check_min_rows", "check_same_rows", "Rule", "check_table"]


def as_tensor_2d(x, name: str = "x", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` as a 2-D tensor (examples × features), flattening trailing dimensions."""
    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.ndim < 2:
        raise ValueError(f"{name}: expected a matrix of shape (n_examples, n_features), got shape {tuple(t.shape)}")
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if dtype is not None:
        t = t.to(dtype)
    elif not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    return t


def check_finite(t: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise if ``t`` holds NaN or infinite values."""
    if torch.is_floating_point(t) and not torch.isfinite(t).all():
        bad = "NaN" if torch.isnan(t).any() else "infinite"
        raise ValueError(f"{name}: contains {bad} values")
    return t


def check_min_rows(t: torch.Tensor, n_min: int, name: str = "x", why: str = "") -> torch.Tensor:
    """Raise if ``t`` has fewer than ``n_min`` rows (examples)."""
    if t.shape[0] < n_min:
        extra = f" ({why})" if why else ""
        raise ValueError(f"{name}: needs at least {n_min} examples{extra}, got {t.shape[0]}")
    return t


def check_same_rows(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise if ``x`` and ``y`` do not have the same number of rows (examples)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of examples (rows), "
            f"got {x.shape[0]} and {y.shape[0]}")


# -- declarative parameter tables -------------------------------------------------------------------------------------
_KINDS = {"int": "an integer", "float": "a finite number", "bool": "True or False", "str": "a string"}


@dataclass(frozen=True)
class Rule:
    """One row of a parameter table: the type a value must have and the range it must lie in.

    ``kind`` is "int" (an integer, never a bool), "float" (a finite int or float, never a bool or a string),
    "bool" or "str"; ``low``/``high`` bound it (open bounds with ``low_open``/``high_open``); ``choices`` lists
    the allowed values; ``optional`` allows None.
    """
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False

    def describe(self) -> str:
        """The allowed values in words, e.g. "an integer >= 1" or "a finite number in (0, 1)"."""
        text = _KINDS[self.kind]
        if self.choices:
            text = f"one of {list(self.choices)}"
        elif self.low is not None and self.high is not None:
            text += (f" in {'(' if self.low_open else '['}{self.low}, {self.high}"
                     f"{')' if self.high_open else ']'}")
        elif self.low is not None:
            text += f" {'>' if self.low_open else '>='} {self.low}"
        elif self.high is not None:
            text += f" {'<' if self.high_open else '<='} {self.high}"
        return text + (" or None" if self.optional else "")

    def check(self, value, name: str):
        """``value`` if it obeys the rule, else a ValueError naming ``name``, the value and what is allowed."""
        if value is None and self.optional:
            return value
        if not self._type_ok(value) or not self._range_ok(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")
        return value

    def _type_ok(self, value) -> bool:
        if self.kind == "bool":
            return isinstance(value, (bool, np.bool_))
        if self.kind == "str":
            return isinstance(value, str)
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind == "int":
            return isinstance(value, (int, np.integer))
        return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)

    def _range_ok(self, value) -> bool:
        if self.choices:
            return value in self.choices
        if self.kind in ("bool", "str"):
            return True
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))


def check_table(values: dict, table: dict, owner: str) -> None:
    """Check each ``name: value`` of ``values`` against its row of ``table`` (a dict of :class:`Rule`); names
    without a row are refused. Messages read "<owner>: <name> must be ..."."""
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise ValueError(f"{owner}: unknown parameter(s) {unknown}; known: {sorted(table)}")
    for name, value in values.items():
        table[name].check(value, f"{owner}: {name}")
