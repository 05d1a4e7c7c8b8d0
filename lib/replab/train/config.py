"""The configuration of one training run, checked against one declarative table.

A :class:`TrainConfig` holds everything that defines a trained model (architecture, objective and its
hyper-parameters, data, optimisation, seed) and, marked as run settings, what only says how it is computed
(device, mixed precision, compilation, logging, checkpoint interval). The artifact key hashes the first part
only: the same model trained on a GPU in bfloat16 or on a CPU is the same artifact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import models as _models
from .. import objectives as _objectives
from .._validation import Rule, check_table
from ..runtime import get_device
from .tasks import CONDITIONAL_OBJECTIVES

__all__ = ["TrainConfig", "FIELDS", "CLASSIFIER_OBJECTIVES", "CLASSIFIER_OBJECTIVE", "MULTI_LABEL", "OPTIMIZERS",
           "SYNTHETIC", "RUN_SETTING"]

CLASSIFIER_OBJECTIVE = "cross_entropy"
# classifier objectives -> the loss of replab.objectives: one label per image (softmax), or a 0/1 row of binary
# attributes per image (one logistic output each, e.g. CelebA's 40)
CLASSIFIER_OBJECTIVES = {"cross_entropy": _objectives.cross_entropy,
                         "binary_cross_entropy": _objectives.binary_cross_entropy}
MULTI_LABEL = "binary_cross_entropy"
OPTIMIZERS = ("adam", "sgd")
SYNTHETIC = "synthetic"
# dataclass field metadata marking a run setting: it does not define the artifact and stays out of its key
RUN_SETTING = {"run_setting": True}

# The allowed values of every scalar field (the model, objective_params, betas, tuples and names are checked
# by their own rules in __post_init__).
FIELDS: dict[str, Rule] = {
    "split": Rule("str"),
    "dataset": Rule("str"),
    "n": Rule("int", 1, optional=True),
    "subset_seed": Rule("int", 0),
    "batch_size": Rule("int", 1),
    "steps": Rule("int", 1),
    "lr": Rule("float", 0, low_open=True),
    "optimizer": Rule("str", choices=OPTIMIZERS),
    "eps": Rule("float", 0, low_open=True),
    "momentum": Rule("float", 0, 1, high_open=True),
    "nesterov": Rule("bool"),
    "weight_decay": Rule("float", 0),
    "grad_clip": Rule("float", 0, low_open=True, optional=True),
    "lr_decay": Rule("float", 0, 1, low_open=True),
    "eval_every": Rule("int", 1, optional=True),
    "seed": Rule("int", 0),
    "checkpoint_every": Rule("int", 1),
    "log_every": Rule("int", 1),
    "device": Rule("str"),
    "amp": Rule("bool"),
    "compile": Rule("bool"),
    "label_column": Rule("int", 0, optional=True),
    "random_labels": Rule("bool"),
    "label_seed": Rule("int", 0),
    "augment": Rule("bool"),
    "crop_padding": Rule("int", 0),
    "flip": Rule("bool"),
    "init_from": Rule("str", optional=True),
    "reset_layers": Rule("bool"),
    "legacy_freeze_when_not_reset": Rule("bool"),
}
_BETA = Rule("float", 0, 1, high_open=True)
_STD = Rule("float", 0, low_open=True)
_MEAN = Rule("float")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (its hash, less the run settings, is the cache key).

    Parameters
    ----------
    model : a model configuration dataclass of :mod:`replab.models`.
    objective : a name in :data:`replab.objectives.OBJECTIVES` for VAEs; for classifiers ``"cross_entropy"``
        (one label per image) or ``"binary_cross_entropy"`` (multi-label: the model's ``n_classes`` outputs are one
        logit per binary attribute of the dataset's ``attributes``, e.g. CelebA's 40); for models that learn images
        given a target that comes with them (``data=(images, h)``), a name in
        :data:`replab.train.tasks.CONDITIONAL_OBJECTIVES` (``"conditional_nll"``, ``"reconstruction_mse"``).
    objective_params : the objective's hyper-parameters (e.g. ``{"beta": 4}``), checked against
        :data:`replab.objectives.PARAMETERS`.
    dataset, split, n : the data, through ``replab.data.load(dataset, split=split)``; ``n`` examples drawn at
        random with ``subset_seed`` (None: all). ``dataset="synthetic"`` is seeded noise shaped like the model's
        input (for smoke tests), of ``n`` (default 256) examples.
    batch_size, steps, lr, optimizer, betas, eps, momentum, nesterov, weight_decay, grad_clip : optimisation
        (``steps`` optimiser updates; Adam by default, as disentanglement_lib; SGD with Nesterov momentum for the
        classifiers of Jamroż et al.; both in torch's fused implementation on CPU and CUDA). ``lr_decay`` γ
        multiplies the learning rate after every update (the rate of update t + 1 is lr·γ^t; 1: constant).
    eval_every : evaluate every ``eval_every`` updates and after the last on the validation data given to
        :func:`~replab.train.train` (accuracy for classifiers, the held-out NLL or MSE for conditional objectives,
        :func:`replab.train.tasks.metric`) and keep the best-evaluated weights as the run's model (early
        stopping); None: no evaluation, the model is the last update's.
    seed : initialisation, data order and noise (sampling, dropout, augmentation).
    snapshot_steps : steps (number of updates done; 0 is the initialisation) at which the weights are kept.
    label_column : which column of a 2-D label array (or of a factor dataset's ``factor_classes``, e.g. dSprites'
        shape, scale, ...) a classifier learns; None: the dataset's labels. ``random_labels`` replaces the labels
        by a fixed random permutation of them (drawn with ``label_seed``), as in Zhang et al.'s memorisation runs.
    augment, crop_padding, flip : random crop (zero padding ``crop_padding``) of each training image, and with
        ``flip`` a random horizontal flip (natural images; never for digits, where a flip changes the class).
    normalize_mean, normalize_std : per-channel input normalisation for classifiers (None: none).
    init_from : the artifact key of a stored run whose final weights this run starts from (a transfer run; its
        weights come from the cache, or from ``train(..., init=...)``).
    train_layers, reset_layers, legacy_freeze_when_not_reset : train only the named layers of a VAE
        (:func:`replab.models.layer_module` names, the rest frozen), re-initialised first with ``reset_layers``
        (seeded with ``seed``), as Bonheme & Grześ (2023) retrain decoders;
        ``legacy_freeze_when_not_reset`` is their public code's variant (see
        :func:`replab.models.prepare_transfer`). None: every parameter trains.

    Run settings (outside the artifact key)
    ---------------------------------------
    device : ``"auto"`` (CUDA when present) or a device name. ``amp`` (bfloat16 autocast of the model's layers;
        the objective stays in float32) and ``compile`` (``torch.compile`` of a solo run's model) take effect on
        CUDA only. ``checkpoint_every`` and ``log_every``: how often a resumable checkpoint is written and metrics
        are recorded.
    """
    model: Any
    objective: str = "beta_vae"
    objective_params: dict = field(default_factory=dict)
    dataset: str = "dsprites"
    split: str = "train"
    n: int | None = None
    subset_seed: int = 0
    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-4
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    grad_clip: float | None = None
    lr_decay: float = 1.0
    eval_every: int | None = None
    seed: int = 0
    snapshot_steps: tuple[int, ...] = ()
    label_column: int | None = None
    random_labels: bool = False
    label_seed: int = 0
    augment: bool = False
    crop_padding: int = 4
    flip: bool = True
    normalize_mean: tuple[float, ...] | None = None
    normalize_std: tuple[float, ...] | None = None
    init_from: str | None = None
    train_layers: tuple[str, ...] | None = None
    reset_layers: bool = False
    legacy_freeze_when_not_reset: bool = False
    checkpoint_every: int = field(default=1000, metadata=RUN_SETTING)
    log_every: int = field(default=1, metadata=RUN_SETTING)
    device: str = field(default="auto", metadata=RUN_SETTING)
    amp: bool = field(default=False, metadata=RUN_SETTING)
    compile: bool = field(default=False, metadata=RUN_SETTING)

    def __post_init__(self):
        if type(self.model) not in _models.MODELS:
            raise ValueError(f"TrainConfig: model must be a model configuration of replab.models, got {self.model!r}")
        check_table({name: getattr(self, name) for name in FIELDS}, FIELDS, "TrainConfig")
        vae = _models.is_vae_config(self.model)
        self._check_objective(vae)
        for i, beta in enumerate(tuple(self.betas) if isinstance(self.betas, (tuple, list)) else (None,)):
            _BETA.check(beta, f"TrainConfig: betas[{i}]")
        if len(tuple(self.betas)) != 2:
            raise ValueError(f"TrainConfig: betas must be two numbers in [0, 1), got {self.betas!r}")
        snaps = tuple(sorted(set(int(_check_step(s)) for s in self.snapshot_steps)))
        bad = [s for s in snaps if not 0 <= s <= self.steps]
        if bad:
            raise ValueError(f"TrainConfig: snapshot_steps must lie in [0, steps={self.steps}], got {bad}")
        object.__setattr__(self, "snapshot_steps", snaps)
        object.__setattr__(self, "betas", tuple(self.betas))
        self._check_normalisation()
        self._check_layers(vae)
        if (vae or self.conditional) and (self.random_labels or self.augment or self.normalize_mean is not None):
            raise ValueError("TrainConfig: random_labels, augment and normalize_* apply to classifiers only")
        if vae and self.eval_every is not None:
            raise ValueError("TrainConfig: eval_every applies to classifiers and conditional objectives (a VAE "
                             "objective has no evaluation metric)")
        if self.multi_label and self.label_column is not None:
            raise ValueError("TrainConfig: label_column applies to cross_entropy; binary_cross_entropy learns "
                             "every attribute")
        get_device(self.device) if self.device != "auto" else None

    def _check_objective(self, vae: bool) -> None:
        if not isinstance(self.objective_params, dict):
            raise ValueError(f"TrainConfig: objective_params must be a dict, got {self.objective_params!r}")
        if not vae:
            if self.objective not in CLASSIFIER_OBJECTIVES and self.objective not in CONDITIONAL_OBJECTIVES:
                raise ValueError(f"TrainConfig: objective must be one of {tuple(CLASSIFIER_OBJECTIVES)} for a "
                                 f"classifier, or of {tuple(CONDITIONAL_OBJECTIVES)} for a model of images given a "
                                 f"target, got {self.objective!r}")
            if self.objective_params:
                raise ValueError(f"TrainConfig: objective_params must be empty for {self.objective}")
            return
        _objectives.objective(self.objective)  # an unknown name raises here
        allowed = list(_objectives.PARAMETERS[self.objective])
        unknown = sorted(set(self.objective_params) - set(allowed))
        if unknown:
            raise ValueError(f"TrainConfig: objective_params: unknown parameter(s) {unknown} for "
                             f"{self.objective!r}; known: {allowed}")
        check_table(self.objective_params, _objectives.PARAMETERS[self.objective],
                    f"TrainConfig: objective_params of {self.objective}")

    def _check_normalisation(self) -> None:
        if (self.normalize_mean is None) != (self.normalize_std is None):
            raise ValueError("TrainConfig: normalize_mean and normalize_std must be given together")
        if self.normalize_mean is None:
            return
        for name, rule in (("normalize_mean", _MEAN), ("normalize_std", _STD)):
            values = getattr(self, name)
            if not isinstance(values, (tuple, list)):
                raise ValueError(f"TrainConfig: {name} must be a tuple of numbers, got {values!r}")
            for i, v in enumerate(values):
                rule.check(v, f"TrainConfig: {name}[{i}]")
            object.__setattr__(self, name, tuple(values))

    def _check_layers(self, vae: bool) -> None:
        if self.train_layers is None:
            if self.reset_layers or self.legacy_freeze_when_not_reset:
                raise ValueError("TrainConfig: reset_layers and legacy_freeze_when_not_reset need train_layers")
            return
        names = self.train_layers
        if isinstance(names, str) or not isinstance(names, (tuple, list)) or not all(
                isinstance(n, str) for n in names) or not names:
            raise ValueError(f"TrainConfig: train_layers must be a non-empty tuple of layer names, got {names!r}")
        if not vae:
            raise ValueError("TrainConfig: train_layers applies to VAEs (their named layers)")
        object.__setattr__(self, "train_layers", tuple(names))

    @property
    def multi_label(self) -> bool:
        """Whether this is a multi-label classifier (binary cross-entropy over a dataset's binary attributes)."""
        return self.objective == MULTI_LABEL

    @property
    def conditional(self) -> bool:
        """Whether the objective learns images given a target that comes with the data (a conditional objective)."""
        return self.objective in CONDITIONAL_OBJECTIVES

    @property
    def is_vae(self) -> bool:
        return _models.is_vae_config(self.model)


def _check_step(step):
    return Rule("int", 0).check(step, "TrainConfig: snapshot_steps")
