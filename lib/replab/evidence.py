"""Evidence for a claim: its effect as one number, a 95% interval, and the verdict rule that reads them.

A claim of a paper states a direction (dropout *raises* complexity) or a magnitude (a drop of at least 20 nats).
Its effect is one number measured on the same footing in every run (a difference, a ratio, a rank correlation),
tested against the value of no effect (the *null*: 0 for a difference, 1 for a ratio). The interval comes from a
paired bootstrap over the independent units of the experiment, seeds and test examples, resampled jointly so
that paired measurements stay paired (:func:`bootstrap`), or from an exact method where one fits
(:func:`binomial_interval`). :func:`rule` turns it into a verdict:

* **reproduced** when the interval excludes the null on the paper's side;
* **not reproduced** when the interval lies entirely short of the smallest effect the claim implies (the null
  for a direction, the paper's magnitude where it states one);
* **inconclusive** otherwise: the run cannot tell.

Same seed, same interval.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

__all__ = ["Effect", "rule", "bootstrap", "effect_of", "binomial_interval", "RULE"]

RULE = ("reproduced when the 95% interval excludes the null on the paper's side; not reproduced when it lies "
        "entirely short of the smallest effect the claim implies; inconclusive otherwise")


@dataclass(frozen=True)
class Effect:
    """A claim's effect with its interval.

    ``side`` is the paper's side of the null: ``"greater"`` (the effect should exceed ``null``) or ``"less"``.
    ``smallest`` is the smallest effect the claim implies (``None``: the null itself, a claim of direction only).
    ``n`` counts the independent units behind the interval (``{"seeds": 3, "examples": 2000}``); ``method`` says
    how the interval was formed; ``why`` says why there is no interval when ``low``/``high`` are ``None``.
    """

    name: str
    estimate: float
    low: float | None
    high: float | None
    null: float = 0.0
    side: Literal["greater", "less"] = "greater"
    smallest: float | None = None
    n: dict = field(default_factory=dict)
    method: str = ""
    level: float = 0.95
    why: str = ""

    def __post_init__(self):
        if self.side not in ("greater", "less"):
            raise ValueError(f"side must be 'greater' or 'less', got {self.side!r}")
        if not (isinstance(self.estimate, (int, float)) and math.isfinite(self.estimate)):
            raise ValueError(f"effect {self.name!r}: estimate must be a finite number, got {self.estimate!r}")
        if (self.low is None) != (self.high is None):
            raise ValueError(f"effect {self.name!r}: give both ends of the interval or neither")
        if self.low is None and not self.why:
            raise ValueError(f"effect {self.name!r}: without an interval, say why (why=...)")
        if self.low is not None:
            if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
                raise ValueError(f"effect {self.name!r}: interval [{self.low}, {self.high}] is not an interval")
        if self.smallest is not None:
            short = self.smallest < self.null if self.side == "greater" else self.smallest > self.null
            if short:
                raise ValueError(f"effect {self.name!r}: smallest effect {self.smallest} lies on the wrong side of "
                                 f"the null {self.null} for side {self.side!r}")
        object.__setattr__(self, "n", {str(k): int(v) for k, v in dict(self.n).items()})

    def as_dict(self) -> dict:
        return asdict(self)

    def signed(self, value: float) -> float:
        """``value`` measured from the null, positive on the paper's side."""
        return (value - self.null) if self.side == "greater" else (self.null - value)


def rule(effect: Effect) -> str:
    """The verdict :data:`RULE` gives ``effect``: ``"reproduced"``, ``"not reproduced"`` or ``"inconclusive"``."""
    if effect.low is None:
        return "inconclusive"
    smallest = effect.null if effect.smallest is None else effect.smallest
    # Distances from the null with the paper's side positive: the interval is [lo, hi] on that axis.
    lo, hi = sorted((effect.signed(effect.low), effect.signed(effect.high)))
    need = effect.signed(smallest)
    if hi < need:
        return "not reproduced"
    if lo > 0:
        return "reproduced"
    return "inconclusive"


def _check_units(arrays: Sequence[np.ndarray], axes: Sequence[int]) -> tuple[int, ...]:
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    sizes = []
    for axis in axes:
        lengths = {a.shape[axis] if a.ndim > axis else None for a in arrays}
        if None in lengths:
            raise ValueError(f"every array needs axis {axis} to resample; shapes {[a.shape for a in arrays]}")
        if len(lengths) != 1:
            raise ValueError(f"arrays differ in length along resampled axis {axis}: {[a.shape for a in arrays]} "
                             f"(paired units must line up)")
        sizes.append(lengths.pop())
    if min(sizes) < 2:
        raise ValueError(f"a bootstrap needs at least 2 units along every resampled axis, got sizes {sizes}")
    return tuple(sizes)


def bootstrap(statistic: Callable[..., float], *arrays, axes: Sequence[int] = (0,), n_resamples: int = 2000,
              level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """The estimate ``statistic(*arrays)`` and its ``level`` percentile-bootstrap interval.

    Each resample draws, for every axis in ``axes`` independently, indices with replacement along that axis and
    applies the same indices to every array, so paired values stay paired: axis 0 might be seeds and axis 1 test
    examples (a two-way crossed resample). NaN in an array is refused. Returns ``(estimate, low, high)``.
    """
    arrays = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    for i, a in enumerate(arrays):
        if not np.isfinite(a).all():
            raise ValueError(f"array {i} of the bootstrap holds NaN or infinite values")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer of at least 100, got {n_resamples!r}")
    sizes = _check_units(arrays, axes)
    estimate = float(statistic(*arrays))
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for r in range(n_resamples):
        picked = arrays
        for axis, size in zip(axes, sizes):
            idx = rng.integers(0, size, size)
            picked = tuple(np.take(a, idx, axis=axis) for a in picked)
        values[r] = statistic(*picked)
    if not np.isfinite(values).all():
        raise ValueError("the statistic gave NaN or infinite values on some resamples")
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return estimate, float(low), float(high)


def effect_of(name: str, statistic: Callable[..., float], *arrays, null: float = 0.0,
              side: Literal["greater", "less"] = "greater", smallest: float | None = None,
              n: dict | None = None, axes: Sequence[int] = (0,), unit_names: Sequence[str] = ("seeds",),
              n_resamples: int = 2000, seed: int = 0) -> Effect:
    """An :class:`Effect` whose interval is :func:`bootstrap`'s over ``axes`` (named by ``unit_names``)."""
    if len(unit_names) != len(axes):
        raise ValueError(f"unit_names {list(unit_names)} must name each resampled axis {list(axes)}")
    estimate, low, high = bootstrap(statistic, *arrays, axes=axes, n_resamples=n_resamples, seed=seed)
    first = np.asarray(arrays[0])
    counts = {u: first.shape[a] for u, a in zip(unit_names, axes)}
    counts.update(n or {})
    what = " and ".join(unit_names)
    return Effect(name, estimate, low, high, null=null, side=side, smallest=smallest, n=counts,
                  method=f"paired percentile bootstrap over {what}, {n_resamples} resamples")


def binomial_interval(name: str, successes: int, trials: int, null: float = 0.5,
                      side: Literal["greater", "less"] = "greater", smallest: float | None = None) -> Effect:
    """A proportion with its exact (Clopper-Pearson) 95% interval, e.g. an accuracy or a fraction of wins."""
    from scipy.stats import binomtest

    if not (0 <= successes <= trials) or trials < 1:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    ci = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="exact")
    return Effect(name, successes / trials, float(ci.low), float(ci.high), null=null, side=side,
                  smallest=smallest, n={"trials": trials}, method="exact Clopper-Pearson interval")
