"""Evaluation on held-out data during training, and early stopping: each member keeps its best-evaluated weights.

Every ``eval_every`` updates and after the last, each member of a group is evaluated in eval mode (no dropout) on
its own validation set by its objective's metric (:func:`replab.train.tasks.metric`): the mean over the held-out
examples, accumulated in float64. A member's weights are kept when its value is strictly better than every
earlier one (so the first of equal values wins), and the kept weights are the run's final model. The values and
the kept weights travel in the checkpoint, so a resumed run keeps what an uninterrupted one keeps.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call

from .config import TrainConfig
from .tasks import Metric

__all__ = ["Evaluator"]


class _Scored(nn.Module):
    """The module a member's weights are substituted into: its forward is the metric per held-out example."""

    def __init__(self, model: nn.Module, metric: Metric, norm):
        super().__init__()
        self.model, self.metric, self.norm = model, metric, norm

    def forward(self, x, y):
        if self.norm is not None:
            x = (x - self.norm[0]) / self.norm[1]
        return self.metric.fn(self.model, x, y)


class Evaluator:
    """The evaluations of K members on their validation sets (``val``: one ``(images, targets)`` per member,
    images uint8 or floats in [0, 1]) and the best weights of each.

    Parameters
    ----------
    configs : the group's configurations (``eval_every`` and ``steps`` are shared).
    val : each member's held-out images and targets (targets None for models without one).
    metric : the objective's evaluation.
    norm : the classifiers' input normalisation (mean, std) or None.
    """

    def __init__(self, configs: Sequence[TrainConfig], val: Sequence, metric: Metric, norm, device: torch.device,
                 batch_size: int = 256):
        self.every, self.steps, self.k = configs[0].eval_every, configs[0].steps, len(configs)
        self.val, self.metric, self.norm, self.device = list(val), metric, norm, device
        self.batch_size = batch_size
        self.best: list[float | None] = [None] * self.k
        self.best_step: list[int | None] = [None] * self.k
        self.best_state: list[dict | None] = [None] * self.k

    def due(self, done: int) -> bool:
        return done % self.every == 0 or done == self.steps

    def _score(self, model, member: int, weights: dict | None) -> float:
        images, targets = self.val[member]
        scored = _Scored(model, self.metric, self.norm)
        total, n = 0.0, len(images)
        for i in range(0, n, self.batch_size):
            x = images[i:i + self.batch_size].to(self.device)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            y = None if targets is None else targets[i:i + self.batch_size].to(self.device)
            values = scored(x, y) if weights is None else \
                functional_call(scored, {f"model.{n}": w for n, w in weights.items()}, (x, y))
            total += float(values.double().sum())
        return total / n

    @torch.no_grad()
    def __call__(self, group, done: int) -> torch.Tensor:
        """Evaluate every member of ``group`` (a :class:`replab.train.loop._Group`) after ``done`` updates, keep
        the weights of those that improved, and return the (K,) values (float64, on the device)."""
        if group.k == 1:
            model = group.model
            was = model.training
            model.eval()
            try:
                values = [self._score(model, 0, None)]
            finally:
                model.train(was)
        else:
            model = group.base
            was = model.training
            model.eval()
            try:
                values = [self._score(model, m, {n: group.stacked[n][m] for n in group.names})
                          for m in range(self.k)]
            finally:
                model.train(was)
        better = [self.best[m] is None or (values[m] > self.best[m] if self.metric.higher_is_better
                                           else values[m] < self.best[m]) for m in range(self.k)]
        if any(better):
            states = group.states()
            for m in range(self.k):
                if better[m]:
                    self.best[m], self.best_step[m], self.best_state[m] = values[m], done, states[m]
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    def state(self) -> dict:
        return {"best": list(self.best), "best_step": list(self.best_step), "best_state": list(self.best_state)}

    def restore(self, state: dict) -> None:
        if len(state["best"]) != self.k:
            raise ValueError(f"eval: the checkpoint holds {len(state['best'])} members, not {self.k}")
        self.best, self.best_step = list(state["best"]), list(state["best_step"])
        self.best_state = [None if w is None else {n: t.to("cpu") for n, t in w.items()}
                           for w in state["best_state"]]
