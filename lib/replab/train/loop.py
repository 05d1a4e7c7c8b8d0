"""The training loop: one run, or a group of K runs trained together as one stacked model.

Members of a group share the architecture, the objective, the optimiser and the batch size; each keeps its own
initialisation, data order, noise (``replab.noise.HashNoise`` keyed by its seed) and the hyper-parameters of
:data:`replab.objectives.STACKABLE`. VAE members whose objectives read one posterior sample and draw no more noise
(:data:`replab.objectives.ONE_SAMPLE_TERMS`: β-VAE, β-TC-VAE, annealed VAE, DIP-VAE-II) may also differ in the
objective and its other hyper-parameters: each distinct (objective, fixed hyper-parameters) is a slot, every member
computes the one forward pass and the terms of every slot, and keeps its own slot's (``torch.where``; the other
slots read its outputs detached, so they give it neither value nor gradient, even where their terms are not finite
for it). A group stacks the members' parameters (``torch.func.stack_module_state``) and computes all K losses in one
forward and backward pass (``torch.func.vmap`` over ``functional_call``). The sum of the members' losses has, for
each member's parameters, exactly that member's gradient, and Adam and SGD act elementwise, so each member follows
its solo run up to floating-point rounding. Gradient clipping is applied per member.

A run (K = 1) calls its model directly. Both paths take the same batches and the same noise. A model with a
data-dependent initialisation (``initialize(x, h)``) gets it on a seeded first batch of its own data before the
members are stacked; a learning-rate decay (``lr_decay``) is one exponential schedule for the group; evaluation
and early stopping are :mod:`.evaluate`'s.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .. import models as _models
from .. import noise as _noise
from .. import objectives as _objectives
from ..runtime import get_device, progress, seed_everything
from . import checkpoint as _checkpoint
from . import tasks as _tasks
from .config import CLASSIFIER_OBJECTIVES, TrainConfig
from .data import Batches, MemberData, augment, data_init
from .evaluate import Evaluator

log = logging.getLogger("replab.train")

__all__ = ["fit", "group_signature", "stacked_params"]

# TrainConfig fields that may differ between members of one group (everything else must be equal)
MEMBER_FIELDS = ("seed", "dataset", "split", "n", "subset_seed", "snapshot_steps", "label_column", "random_labels",
                 "label_seed", "init_from", "checkpoint_every", "log_every")


def stacked_params(config: TrainConfig) -> tuple[str, ...]:
    """The objective hyper-parameters of ``config`` that may differ between members of its group."""
    return _objectives.STACKABLE.get(config.objective, ()) if config.is_vae else ()


def _one_sample(config: TrainConfig) -> bool:
    return config.is_vae and config.objective in _objectives.ONE_SAMPLE_TERMS


def group_signature(config: TrainConfig) -> tuple:
    """What members of one stacked group must share: every field but :data:`MEMBER_FIELDS` and the stackable
    objective hyper-parameters (whose presence, not value, must agree); for the one-sample VAE objectives
    (:data:`replab.objectives.ONE_SAMPLE_TERMS`), every field but those and the objective with all its
    hyper-parameters."""
    if _one_sample(config):
        fields = tuple((name, repr(getattr(config, name))) for name in config.__dataclass_fields__
                       if name not in MEMBER_FIELDS and name not in ("objective", "objective_params"))
        return fields + (("objective", "a VAE objective of one posterior sample"),)
    stackable = stacked_params(config)
    fixed = {k: v for k, v in config.objective_params.items() if k not in stackable}
    fields = tuple((name, repr(getattr(config, name))) for name in config.__dataclass_fields__
                   if name not in MEMBER_FIELDS and name != "objective_params")
    present = tuple(sorted(k for k in config.objective_params if k in stackable))
    return fields + (("fixed_params", repr(sorted(fixed.items()))), ("stacked_params", present))


@dataclass
class _Spec:
    """The members' shared settings, as the per-member step needs them."""
    vae: bool
    loss_fn: Callable
    fixed: dict
    augment: bool
    crop_padding: int
    flip: bool
    norm: tuple | None
    amp: str | None
    conditional: "_tasks.Conditional | None" = None
    slots: "list[_Slot] | None" = None  # a group of several one-sample VAE objectives: one slot each


@dataclass
class _Slot:
    """One (objective, fixed hyper-parameters) of a mixed group; ``names`` is filled with the names its terms
    return when the step first runs."""
    objective: str
    terms: Callable
    fixed: dict
    stacked: tuple[str, ...]
    names: list | None = None


def _slot_key(config: TrainConfig) -> tuple:
    stackable = stacked_params(config)
    return (config.objective, repr(sorted((k, v) for k, v in config.objective_params.items() if k not in stackable)),
            tuple(sorted(k for k in config.objective_params if k in stackable)))


def _mixed_logs(model, spec: _Spec, x, step: int, g, hparams: dict, select) -> dict:
    """One forward pass, the terms of every slot, and for each name the value of the member's own slot
    (``select``: which slot is the member's, one boolean per slot)."""
    out, log_px = _objectives.vae_forward(model, x, g)
    logs: dict = {}
    for s, slot in enumerate(spec.slots):
        # a member outside the slot reads the slot's inputs detached, so that terms whose gradient is infinite
        # for it (0·∞ = NaN through the selection below) reach no parameter of its
        own = [torch.where(select[s], t, t.detach()) for t in (log_px, *out)]
        part = slot.terms(own[0], type(out)(*own[1:]), step, **slot.fixed,
                          **{n: hparams[f"{s}:{n}"] for n in slot.stacked})
        slot.names = list(part)
        for name, value in part.items():
            logs[name] = torch.where(select[s], value, logs[name] if name in logs else torch.zeros_like(value))
    return logs


def _member_logs(model, spec: _Spec, key, hparams: dict, x, y, step: int, select=None) -> dict:
    """The objective's tensors for one member at ``step`` (its loss under "loss"), with its own noise."""
    g = _noise.HashNoise(key, step, device=x.device)
    if spec.amp is not None:
        model = _Autocast(model, spec.amp)
    with _noise.using(g):
        if spec.slots is not None:
            return _mixed_logs(model, spec, x, step, g, hparams, select)
        if spec.vae:
            return spec.loss_fn(model, x, step, g, **spec.fixed, **hparams)
        if spec.conditional is not None:
            return spec.conditional.loss(model, x, y, g)
        if spec.augment:
            x = augment(x, spec.crop_padding, spec.flip, g)
        if spec.norm is not None:
            x = (x - spec.norm[0]) / spec.norm[1]
        return spec.loss_fn(model(x), y)


class _Stacked(nn.Module):
    """The module ``functional_call`` substitutes a member's parameters into: every method of ``model`` the
    objective calls (forward, encode, decode, log_likelihood) then runs on that member's weights."""

    def __init__(self, model: nn.Module, spec: _Spec):
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, key, hparams, x, y, step, select):
        return _member_logs(self.model, self.spec, key, hparams, x, y, step, select)


def _float32(value):
    """Tensors (also inside tuples such as :class:`~replab.models.VAEOutput`) of a low-precision dtype, in float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float64 else value
    if isinstance(value, tuple):
        items = [_float32(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


class _Autocast:
    """The model seen through mixed precision: its forward, ``encode`` and ``decode`` run under bfloat16 autocast
    and return float32, so the objective (log-sum-exps, kernel matrices, covariances) is computed in float32
    outside autocast. Other attributes are the model's own."""

    def __init__(self, model, device_type: str, dtype: torch.dtype = torch.bfloat16):
        self._model, self._device_type, self._dtype = model, device_type, dtype

    def _run(self, fn, *args, **kwargs):
        with torch.autocast(self._device_type, dtype=self._dtype):
            out = fn(*args, **kwargs)
        return _float32(out)

    def __call__(self, *args, **kwargs):
        return self._run(self._model, *args, **kwargs)

    def encode(self, *args, **kwargs):
        return self._run(self._model.encode, *args, **kwargs)

    def decode(self, *args, **kwargs):
        return self._run(self._model.decode, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


class _MetricLog:
    """Per-step metrics of K members kept as detached (K,) tensors and turned into numbers in bulk (no GPU
    sync per step)."""

    def __init__(self, k: int, rows: list[list[dict]] | None = None):
        self.rows = [list(r) for r in rows] if rows is not None else [[] for _ in range(k)]
        self._pending: list[tuple[int, dict]] = []

    def add(self, step: int, logs: dict):
        self._pending.append((step, {name: v.detach() for name, v in logs.items()}))
        if len(self._pending) >= 256:
            self.flush()

    def flush(self) -> list[list[dict]]:
        if self._pending:
            k = len(self.rows)
            # steps may log different names (an evaluation at some steps only): one (values, K) table for all
            values = torch.stack([v.double().reshape(-1).expand(k) for _, logs in self._pending
                                  for v in logs.values()]).cpu()
            table = values.T.tolist()
            for member in range(k):
                column = iter(table[member])
                self.rows[member].extend({"step": s, **{n: next(column) for n in logs}} for s, logs in self._pending)
            self._pending = []
        return self.rows


def _make_optimizer(config: TrainConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """Adam or SGD as torch defines them, in torch's fused implementation where the device has one: one pass over
    each parameter's memory per update instead of one per operation, which on a CPU is most of the optimiser's
    time (the results differ from the unfused loop by rounding only)."""
    fused = params[0].device.type in ("cpu", "cuda")
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps,
                                weight_decay=config.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=config.weight_decay, fused=fused)


def _clip_per_member(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each member's gradient (slice k of every stacked parameter) to norm at most ``max_norm``, as
    ``clip_grad_norm_`` does for one model; returns the (K,) norms before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.ndim - 1))))
    return norms


class _Group:
    """The state of K members being trained: models (or stacked parameters), optimiser, records."""

    def __init__(self, configs: list[TrainConfig], device: torch.device, inits: Sequence[dict | None],
                 prepare: Callable[[int, nn.Module], None] | None = None):
        self.configs, self.device, self.k = configs, device, len(configs)
        models = [_initial_model(config, init) for config, init in zip(configs, inits)]
        if prepare is not None:
            for m, model in enumerate(models):
                prepare(m, model)
        self.names = list(models[0].state_dict())
        self.input_shape = models[0].input_shape
        trainable = [n for n, p in models[0].named_parameters() if p.requires_grad]
        if self.k == 1:
            self.model = models[0].to(device)
            self.params = [p for p in self.model.parameters() if p.requires_grad]
        else:
            params, buffers = stack_module_state(models)
            self.stacked = {name: t.detach().to(device) for name, t in {**params, **buffers}.items()}
            for name in trainable:  # frozen layers of a transfer run stay out of the optimiser
                self.stacked[name].requires_grad_(True)
            self.params = [self.stacked[n] for n in trainable]
            self.base = copy.deepcopy(models[0]).to("meta")
        self.optimizer = _make_optimizer(configs[0], self.params)
        gamma = configs[0].lr_decay
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma) if gamma != 1.0 else None
        self.snapshots: list[dict[int, dict]] = [{} for _ in configs]
        self.metrics = _MetricLog(self.k)
        self.evaluator: Evaluator | None = None

    def states(self) -> list[dict[str, torch.Tensor]]:
        """Each member's state dict, on the CPU."""
        if self.k == 1:
            return [{n: v.detach().to("cpu", copy=True) for n, v in self.model.state_dict().items()}]
        return [{n: self.stacked[n][m].detach().to("cpu", copy=True) for n in self.names} for m in range(self.k)]

    def checkpoint_state(self) -> dict:
        weights = self.model.state_dict() if self.k == 1 else {n: t.detach() for n, t in self.stacked.items()}
        return {"weights": weights, "optimizer": self.optimizer.state_dict(), "snapshots": self.snapshots,
                "metrics": self.metrics.flush(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "eval": None if self.evaluator is None else self.evaluator.state()}

    def restore(self, state: dict) -> None:
        if self.k == 1:
            self.model.load_state_dict(state["weights"])
        else:
            with torch.no_grad():
                for name, t in self.stacked.items():
                    src = state["weights"][name]
                    if src.shape != t.shape:
                        raise ValueError(f"{name}: shape {tuple(src.shape)} instead of {tuple(t.shape)}")
                    t.copy_(src)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.evaluator is not None:
            self.evaluator.restore(state["eval"])
        # kept weights live on the CPU, as in a run that was never interrupted (the checkpoint was read onto the
        # device)
        self.snapshots = [{int(s): _on_cpu(v) for s, v in snaps.items()} for snaps in state["snapshots"]]
        self.metrics = _MetricLog(self.k, state["metrics"])


def _on_cpu(state: dict | None) -> dict | None:
    return None if state is None else {n: t.to("cpu") for n, t in state.items()}


def _initial_model(config: TrainConfig, init: dict | None) -> nn.Module:
    """The member's model before its first update: its seeded initialisation (that of its solo run), or the
    weights ``init`` of the run it continues, with only ``train_layers`` trainable (re-initialised with
    ``reset_layers``)."""
    seed_everything(config.seed)
    model = _models.build(config.model)
    if config.init_from is not None:
        if init is None:
            raise ValueError(f"init_from={config.init_from!r}: the weights of that run were not given and are not "
                             f"in the cache; train it first or pass init=")
        model.load_state_dict(init)
    if config.train_layers is not None:
        if not _models.prepare_transfer(model, config.train_layers, config.reset_layers,
                                        config.legacy_freeze_when_not_reset, config.seed):
            raise ValueError(f"train_layers={config.train_layers}: nothing is left to train (the public code's "
                             f"legacy_freeze_when_not_reset freezes layers that are not reset)")
    return model


def _spec(configs: Sequence[TrainConfig], device: torch.device) -> _Spec:
    config = configs[0]
    norm = None
    if config.normalize_mean is not None:
        norm = (torch.tensor(config.normalize_mean, device=device)[:, None, None],
                torch.tensor(config.normalize_std, device=device)[:, None, None])
    stackable = stacked_params(config)
    conditional = _tasks.CONDITIONAL_OBJECTIVES.get(config.objective)
    loss_fn = _objectives.objective(config.objective) if config.is_vae else \
        conditional.loss if conditional is not None else CLASSIFIER_OBJECTIVES[config.objective]
    slots = None
    keys = list(dict.fromkeys(_slot_key(c) for c in configs))
    if len(keys) > 1:
        first_of = {k: next(c for c in configs if _slot_key(c) == k) for k in keys}
        slots = [_Slot(c.objective, _objectives.ONE_SAMPLE_TERMS[c.objective],
                       {k: v for k, v in c.objective_params.items() if k not in stacked_params(c)}, key[2])
                 for key, c in first_of.items()]
    return _Spec(vae=config.is_vae, loss_fn=loss_fn, conditional=conditional,
                 fixed={k: v for k, v in config.objective_params.items() if k not in stackable},
                 augment=config.augment, crop_padding=config.crop_padding, flip=config.flip, norm=norm,
                 amp="cuda" if (config.amp and device.type == "cuda") else None, slots=slots)


def _check_group(configs: Sequence[TrainConfig]) -> None:
    first = group_signature(configs[0])
    for config in configs[1:]:
        if group_signature(config) != first:
            diff = [a[0] for a, b in zip(first, group_signature(config)) if a != b]
            raise ValueError(f"configs: members of one group must share everything but {MEMBER_FIELDS} and the "
                             f"stackable objective parameters (VAE objectives of one posterior sample, "
                             f"{sorted(_objectives.ONE_SAMPLE_TERMS)}, may differ with all their parameters); "
                             f"they differ in {diff}")


def fit(configs: Sequence[TrainConfig], datas: Sequence, keys: Sequence[str], checkpoint: Path | None,
        callbacks: Sequence[Callable], inits: Sequence[dict | None] | None = None,
        val_datas: Sequence | None = None) -> list[dict]:
    """Train the group ``configs`` (one run when K = 1) and return each member's payload: final state dict (the
    best-evaluated one with ``eval_every``), snapshots and metric rows. ``checkpoint`` is the folder of the group's
    resumable checkpoints; ``inits`` the starting weights of members that continue another run (``init_from``);
    ``val_datas`` each member's validation data (in memory, as ``datas``), needed with ``eval_every``."""
    configs = list(configs)
    _check_group(configs)
    first = configs[0]
    device = get_device(first.device)
    inits = list(inits) if inits is not None else [None] * len(configs)
    data_of = MemberData(configs, datas)

    def make_group() -> _Group:
        group = _Group(configs, device, inits,
                       prepare=lambda m, model: data_init(configs[m], model, *data_of(m, model.input_shape)))
        if first.eval_every is not None:
            group.evaluator = _evaluator(configs, val_datas, group.input_shape, device)
        return group

    group = make_group()
    images, targets = zip(*(data_of(m, group.input_shape) for m in range(group.k)))
    targets = None if targets[0] is None else list(targets)
    batches = Batches(list(images), targets, first.batch_size, [c.seed for c in configs], device)
    spec = _spec(configs, device)
    stackable = stacked_params(first)
    keys = list(keys)
    start = 0
    state = _checkpoint.load(checkpoint, keys, first.steps, map_location=device)
    if state is not None:
        try:
            group.restore(state)
            start = int(state["step"])
            log.info("replab train: resuming from step %d", start)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            log.warning("replab train: checkpoint in %s does not fit the run (%s); starting again", checkpoint, exc)
            group = make_group()
    if start == 0:
        for m, config in enumerate(configs):
            if 0 in config.snapshot_steps:
                group.snapshots[m][0] = group.states()[m]
    key_words = torch.tensor([_noise.seed_word(c.seed) for c in configs], dtype=torch.int64, device=device)
    select = slot_of = None
    if spec.slots is None:
        hparams = {name: torch.tensor([float(c.objective_params[name]) for c in configs], device=device)
                   for name in stackable if name in first.objective_params}
    else:
        keys_of_slots = list(dict.fromkeys(_slot_key(c) for c in configs))
        slot_of = [keys_of_slots.index(_slot_key(c)) for c in configs]
        select = torch.zeros(group.k, len(spec.slots), dtype=torch.bool, device=device)
        select[torch.arange(group.k), torch.tensor(slot_of)] = True
        hparams = {}
        for s, slot in enumerate(spec.slots):
            own = [c for c, o in zip(configs, slot_of) if o == s]
            for name in slot.stacked:  # members of other slots carry a valid value they never use
                hparams[f"{s}:{name}"] = torch.tensor(
                    [float((c if o == s else own[0]).objective_params[name]) for c, o in zip(configs, slot_of)],
                    device=device)

    if group.k == 1:
        solo_key = _noise.seed_word(first.seed)  # an int: its hashes cost no tensor operation
        forward = torch.compile(group.model) if (first.compile and device.type == "cuda") else group.model
        group.model.train()

        def step_logs(x, y, step):
            logs = _member_logs(forward, spec, solo_key, {n: v[0] for n, v in hparams.items()}, x[0],
                                None if y is None else y[0], step)
            return {n: v.reshape(1) if isinstance(v, torch.Tensor) else torch.tensor([float(v)])
                    for n, v in logs.items()}
    else:
        module = _Stacked(group.base, spec).train()
        names = group.names

        def member(weights, key, hp, x, y, step, sel):
            return functional_call(module, {f"model.{n}": weights[n] for n in names}, (key, hp, x, y, step, sel))

        def step_logs(x, y, step):
            batched = vmap(member, in_dims=(0, 0, 0, 0, None if y is None else 0, None, None if select is None else 0),
                           randomness="error")
            return batched(group.stacked, key_words, hparams, x, y, step, select)

    snap_at = [set(c.snapshot_steps) for c in configs]
    every_ckpt, every_log = first.checkpoint_every, first.log_every
    first_bad = torch.full((group.k,), -1, dtype=torch.long, device=device)
    objectives = [first.objective] if spec.slots is None else list(dict.fromkeys(s.objective for s in spec.slots))
    desc = f"train {'+'.join(objectives)}" + (f" ×{group.k}" if group.k > 1 else "")
    for step in progress(range(start, first.steps), desc=desc, total=first.steps - start):
        x, y = batches(step)
        logs = step_logs(x, y, step)
        loss = logs["loss"]
        group.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        if first.grad_clip is not None:
            logs["grad_norm"] = _clip_per_member(group.params, first.grad_clip) if group.k > 1 else \
                nn.utils.clip_grad_norm_(group.params, first.grad_clip).reshape(1)
        if group.scheduler is not None:
            logs["lr"] = torch.full((group.k,), group.optimizer.param_groups[0]["lr"], dtype=torch.float64,
                                    device=device)
        group.optimizer.step()
        if group.scheduler is not None:
            group.scheduler.step()
        done = step + 1
        evaluate = group.evaluator is not None and group.evaluator.due(done)
        if evaluate:
            logs["eval"] = group.evaluator(group, done)
        bad = ~torch.isfinite(loss.detach())
        first_bad = torch.where(bad & (first_bad < 0), torch.full_like(first_bad, done), first_bad)
        if done % every_log == 0 or done == first.steps or evaluate:
            group.metrics.add(done, logs)
        if any(done in s for s in snap_at):
            states = group.states()
            for m in range(group.k):
                if done in snap_at[m]:
                    group.snapshots[m][done] = states[m]
        at_checkpoint = checkpoint is not None and done % every_ckpt == 0 and done < first.steps
        if at_checkpoint or done % 64 == 0 or done == first.steps:
            _raise_if_diverged(first_bad, configs)
        if at_checkpoint:
            _checkpoint.save(checkpoint, group.checkpoint_state(), keys, done, first.steps)
        for callback in callbacks:
            callback(done, {n: v if group.k > 1 else v[0] for n, v in logs.items()})
    rows = group.metrics.flush()
    if spec.slots is not None:
        rows = _own_names(rows, spec.slots, slot_of)
    payloads = [{"state_dict": state, "snapshots": group.snapshots[m], "metrics": rows[m], "steps": first.steps}
                for m, state in enumerate(group.states())]
    if group.evaluator is not None:
        ev = group.evaluator
        for m, payload in enumerate(payloads):
            payload.update(state_dict=ev.best_state[m], best_step=ev.best_step[m], best_eval=ev.best[m],
                           eval_metric=ev.metric.name)
    return payloads


def _own_names(rows: list[list[dict]], slots: list[_Slot], slot_of: list[int]) -> list[list[dict]]:
    """Each member's metric rows with only the names of its own slot's terms (then the engine's own, such as
    the gradient norm), as its solo run logs them."""
    terms = {n for slot in slots for n in (slot.names or ())}
    out = []
    for member_rows, s in zip(rows, slot_of):
        own = slots[s].names or []
        out.append([{"step": r["step"], **{n: r[n] for n in own if n in r},
                     **{n: v for n, v in r.items() if n != "step" and n not in terms}} for r in member_rows])
    return out


def _evaluator(configs: Sequence[TrainConfig], val_datas: Sequence | None, input_shape,
               device: torch.device) -> Evaluator:
    if val_datas is None or any(v is None for v in val_datas):
        raise ValueError("val_data: eval_every is set, so every run needs validation data (images, or "
                         "(images, targets)) to be evaluated on")
    # the held-out examples as given: no subset of n, no random labels
    val_of = MemberData([replace(c, n=None, random_labels=False) for c in configs], val_datas)
    first = configs[0]
    norm = _spec([first], device).norm
    return Evaluator(configs, [val_of(m, input_shape) for m in range(len(configs))], _tasks.metric(first.objective),
                     norm, device)


def _raise_if_diverged(first_bad: torch.Tensor, configs: Sequence[TrainConfig]) -> None:
    steps = first_bad.tolist()
    bad = [(m, s) for m, s in enumerate(steps) if s >= 0]
    if bad:
        which = "; ".join(f"member {m} (seed {configs[m].seed}, {configs[m].objective} "
                          f"{configs[m].objective_params}) at update {s}" for m, s in bad)
        raise FloatingPointError(f"training diverged: the loss became NaN or infinite for {which}; nothing was "
                                 f"stored (lower lr, set grad_clip, or check the data)")
