"""Transfer between image datasets (Bonheme & Grześ 2023): the datasets, area-resized and cached, with generated
stand-ins for real datasets whose files are not here; and a VAE retrained on a target dataset with every layer
frozen except the ones retrained (re-initialised or fine-tuned), through the training engine.

Where the public code (github.com/bonheml/VAE_learning_dynamics, ``bin/transfer``) differs, the correct method
is the default: :func:`transfer` trains the layers it is asked to fine-tune; ``legacy_freeze_when_not_reset=True``
reproduces the public script, which freezes every layer when the layers are not reset.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from . import data as _data
from .data import stand_ins as _stand_ins
from . import models as _models
from .cache import ArtifactCache
from .data._base import resize_area
from .runtime import get_device
from .train import TrainConfig, TrainedRun, run_key

__all__ = ["CHANNELS", "STAND_INS", "paper_datasets", "ImageSet", "load_images", "decoder_layers",
           "retrain_schedule", "transfer", "transfers", "TransferJob"]

CHANNELS = {"cars3d": 3, "celeba": 3}  # the papers' other datasets are grey
STAND_INS = _stand_ins.STAND_IN  # the offline sets that take a real dataset's place (Symsol: symsol_solids)


def paper_datasets(names: Sequence[str], root=None, need_factors: bool = False) -> list[str]:
    """The datasets of ``names`` that can be loaded here, following the stand-in policy of the page
    (:mod:`replab.data.stand_ins`):

    - a page that allows stand-ins (``smoke``, ``quick``, or ``stand_ins=True``): a real dataset whose files are
      missing from the data folder (``root`` or ``REPLAB_DATA``) is replaced by its stand-in (Symsol by
      ``symsol_solids``) or, without one (Cars3D, smallNORB), left out; both recorded, so the page's claims and
      figures say so;
    - a page that refuses them (``medium``, ``full``): a missing dataset raises
      :class:`~replab.data.stand_ins.MissingDataset` naming the ``replab data fetch`` command, a stand-in named
      directly raises :class:`~replab.data.stand_ins.StandInRefused`;
    - no page (library use, policy ``None``): a missing dataset is replaced or left out with a warning.

    With ``need_factors``, a dataset whose files carry neither factor classes nor labels (the public code's Symsol
    images) counts as missing; one with labels only (Symsol's solid, ``symsol_solids``) is classified by them."""
    out = []
    for name in names:
        if name not in _data.names():
            raise ValueError(f"names: unknown dataset {name!r}; known: {_data.names()}")
        chosen = _available(name, root, need_factors) if _stand_ins.allowed() is None else \
            _chosen(name, root, need_factors)
        if chosen is not None and chosen not in out:
            out.append(chosen)
    return out


def _factor_problem(name: str, root, need_factors: bool) -> str | None:
    """Why ``name`` cannot serve (its files are missing or carry no factor classes), or None when it can."""
    try:
        loaded = _data.load(name, split="test", root=root)
    except FileNotFoundError as err:
        return str(err)
    if need_factors and loaded.factor_classes is None and loaded.labels is None:
        return "its files carry no factor classes or labels, which this page classifies"
    return None


def _available(name: str, root, need_factors: bool) -> str | None:
    """No stand-in policy: ``name``, its stand-in, or None (left out), with a warning for the last two."""
    problem = _factor_problem(name, root, need_factors)
    return name if problem is None else _replaced(name, problem)


def _replaced(name: str, problem: str) -> str | None:
    """``name``'s stand-in (or None: left out), with a warning saying why."""
    stand_in = STAND_INS.get(name)
    warnings.warn(f"{name}: {problem}; " + (f"using {stand_in} instead" if stand_in else "left out"), stacklevel=4)
    return stand_in


def _chosen(name: str, root, need_factors: bool) -> str | None:
    """Under a page's policy: :func:`replab.data.stand_ins.choose`, then the factor-class check."""
    chosen = _stand_ins.choose(name, optional=True, root=root)
    if chosen is None or chosen != name or not need_factors:
        return chosen
    problem = _factor_problem(name, root, need_factors)
    if problem is None:
        return name
    if not _stand_ins.allowed():
        stand_in = STAND_INS.get(name)
        raise _stand_ins.MissingDataset(f"{name}: {problem}, and this page's profile runs only on the papers' "
                                        f"datasets" + (f" (stand_ins=True runs on {stand_in})" if stand_in else ""))
    stand_in = _replaced(name, problem)
    _stand_ins.record(stand_in or f"no {name}", name)
    return stand_in


@dataclass
class ImageSet:
    """Images (uint8, N×C×H×W) with their factor classes (N×F) and the spec that rebuilds them (a cache key)."""
    images: torch.Tensor
    factor_classes: torch.Tensor | None
    factor_names: tuple[str, ...]
    spec: dict = field(default_factory=dict)

    def float(self) -> torch.Tensor:
        """The images as float32 in [0, 1]."""
        return self.images.float() / 255.0

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_images(dataset: str, n: int, seed: int = 0, image_size: int = 64, split: str = "train", *,
                cache: ArtifactCache | None = None) -> ImageSet:
    """``n`` examples of ``dataset``'s ``split`` (all of them when the split is smaller, or when ``n`` is 0: the
    whole split, in its own order) drawn with ``seed``,
    area-resized to ``image_size``, cached (the generators render each image, which costs seconds per
    thousand)."""
    if dataset not in _data.names():
        raise ValueError(f"dataset: unknown {dataset!r}; known: {_data.names()}")
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        raise ValueError(f"n must be a non-negative integer (0: the whole split), got {n!r}")
    spec = {"dataset": dataset, "n": n, "seed": seed, "image_size": image_size, "split": split}

    def compute():
        ds = _data.load(dataset, split=split)
        if n:
            ds = ds.sample(min(n, len(ds)), seed=seed)
        classes = ds.factor_classes
        if classes is None and ds.labels is not None:
            classes = ds.labels[:, None]
        names = list(ds.factor_names) if ds.factor_classes is not None else ["label"]
        return {"images": resize_area(ds.images, image_size), "factor_classes": classes, "factor_names": names}

    payload = (cache if cache is not None else ArtifactCache()).get_or_compute("bonheme-data", spec, compute)
    return ImageSet(payload["images"], payload["factor_classes"], tuple(payload["factor_names"]), spec)


# -- retraining layers on a target -------------------------------------------------------------------------------
def decoder_layers(model) -> list[str]:
    """The decoder's trainable layers from the innermost (next to the latent) to the output layer."""
    return [f"decoder.{k}" for k in model.decoder] + ["output"]


def retrain_schedule(model, k: int, order: str = "innermost") -> list[str]:
    """The ``k`` decoder layers retrained: the k innermost (Fig. 6) or the k outermost (App. B, Fig. 9)."""
    layers = decoder_layers(model)
    if order not in ("innermost", "outermost"):
        raise ValueError(f"order must be 'innermost' or 'outermost', got {order!r}")
    if not (isinstance(k, int) and 0 <= k <= len(layers)):
        raise ValueError(f"k must be an integer in [0, {len(layers)}], got {k!r}")
    return (layers if order == "innermost" else layers[::-1])[:k]


@dataclass(frozen=True)
class TransferJob:
    """One run of :func:`transfers`: ``source`` retrained on ``target`` with ``layers`` (see :func:`transfer`)."""
    source: TrainedRun
    target: ImageSet
    layers: Sequence[str]
    steps: int
    reset: bool = True
    legacy_freeze_when_not_reset: bool = False
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0


def _transfer_run(job: TransferJob, device) -> "TrainConfig | nn.Module":
    """The training configuration of ``job``, or the model itself when nothing of it trains."""
    if not (isinstance(job.steps, int) and not isinstance(job.steps, bool) and job.steps >= 0):
        raise ValueError(f"steps must be a non-negative integer, got {job.steps!r}")
    cfg, source = job.source.config, job.source
    order = [n for n in source.model.layer_names() if n in set(job.layers)]
    layers = tuple(order + [n for n in job.layers if n not in set(order)])  # model order: one set, one run
    start = _models.build(cfg.model)
    start.load_state_dict(source.model.state_dict())
    if not _models.prepare_transfer(start, layers, job.reset, job.legacy_freeze_when_not_reset, job.seed) \
            or not job.steps:
        return start.to(get_device(device)).eval()  # nothing trains: the source with its reset layers
    return dataclasses.replace(
        cfg, init_from=source.key or run_key(cfg), train_layers=layers, reset_layers=job.reset,
        legacy_freeze_when_not_reset=job.legacy_freeze_when_not_reset, steps=job.steps, seed=job.seed,
        lr=cfg.lr if job.lr is None else float(job.lr),
        batch_size=cfg.batch_size if job.batch_size is None else int(job.batch_size),
        dataset=str(job.target.spec.get("dataset", cfg.dataset)), n=None,
        snapshot_steps=(), device=device if isinstance(device, str) else str(device))


def transfers(jobs: Sequence[TransferJob], cache: ArtifactCache | None | bool = None,
              device="auto") -> list[nn.Module]:
    """The model of every job of ``jobs`` (see :func:`transfer`), in order. Jobs that retrain the same layers
    with the same settings train as one stacked model where the engine stacks (on a GPU: the same schedule for
    the sources of several seeds); a job asked for twice trains once."""
    from .train.groups import train_many

    out: list[nn.Module | None] = [None] * len(jobs)
    configs, owners = [], []  # distinct runs to train, and the jobs that each one answers
    for i, job in enumerate(jobs):
        run = _transfer_run(job, device)
        if isinstance(run, nn.Module):
            out[i] = run
            continue
        same = next((j for j, c in enumerate(configs)
                     if c == run and jobs[owners[j][0]].target.images is job.target.images), None)
        if same is None:
            configs.append(run)
            owners.append([i])
        else:
            owners[same].append(i)
    first = [jobs[o[0]] for o in owners]
    runs = train_many(configs, cache, datas=[j.target.images for j in first], init=[j.source for j in first])
    for run, answered in zip(runs, owners):
        for i in answered:
            out[i] = run.model
    return out


def transfer(source: TrainedRun, target: ImageSet, layers: Sequence[str], steps: int, *, reset: bool = True,
             legacy_freeze_when_not_reset: bool = False, lr: float | None = None, batch_size: int | None = None,
             seed: int = 0, cache: ArtifactCache | None | bool = None, device="auto") -> nn.Module:
    """The source VAE retrained on ``target`` with everything frozen except ``layers`` (``bin/transfer``).

    The retrained layers are re-initialised (``reset=True``, the public default) or fine-tuned from the source
    weights (``reset=False``), and trained for ``steps`` Adam updates with the source's objective and
    hyper-parameters (its learning rate and batch size unless given), through the training engine: a
    :class:`~replab.train.TrainConfig` with ``init_from`` the source's key, cached and resumable like every run
    (``cache=False``: not stored). Returns the model in eval mode. (Many at once: :func:`transfers`.)
    """
    job = TransferJob(source, target, tuple(layers), steps, reset, legacy_freeze_when_not_reset, lr, batch_size,
                      seed)
    return transfers([job], cache, device)[0]
