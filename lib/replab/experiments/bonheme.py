"""The experiments of Bonheme & Grześ (2022, "How do VAEs learn?"; 2023, "How good are VAEs at transfer
learning?"), shared by the pages of ``notebooks/bonheme2022`` and ``notebooks/bonheme2023``.

One small set of disentanglement_lib convolutional VAEs (β-VAE, β-TC-VAE, Annealed VAE, DIP-VAE-II; a primary
and a secondary regularisation strength; two seeds; dSprites and the Symsol-like shapes) is trained once through
:mod:`replab.train` (cached by configuration, or through :func:`replab.grid.run_grid` at ``full``), and the pages
measure on it:

- layer × layer CKA and Procrustes similarity between models, snapshots and classifiers (:func:`similarity`);
- the active units and CKA as posterior-collapse detectors (:func:`collapse_scores`);
- transfer to a target dataset with a frozen encoder and re-initialised, retrained layers (:func:`transfer`),
  retraining 0…all decoder layers innermost- or outermost-first (:func:`retrain_schedule`);
- per-factor classifiers on latent means (:func:`factor_classification`, the paper's ``evaluate_downstream_task``).

Where the public code (github.com/bonheml/VAE_learning_dynamics) differs, the correct method is the default:
``beta_tc_vae`` really trains a β-TC-VAE (the public config instantiates a β-VAE), and :func:`transfer` trains
the layers it is asked to fine-tune; ``legacy_freeze_when_not_reset=True`` reproduces the public script, which
freezes every layer when the layers are not reset.
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import data as _data
from .. import models as _models
from ..cache import ArtifactCache
from ..data._base import resize_area
from ..models import layer_module, prepare_transfer, reset_layers  # noqa: F401  (part of this module's API)
from ..runtime import get_device
from ..similarity import grid_table, similarity_grid
from ..train import TrainConfig, TrainedRun, run_key, train
from ..train.groups import train_many

__all__ = ["OBJECTIVES", "REGULARISER", "OBJECTIVE_LABELS", "CHANNELS", "paper_datasets", "ImageSet", "Member",
           "load_images", "model_config", "objective_params", "train_config", "snapshot_steps", "model_set",
           "train_members", "train_classifier", "train_fc", "noise_seed", "representations", "similarity",
           "similarity_tables", "mean_tables", "model_similarity", "seed_pairs", "pairwise_mean", "diagonal",
           "part_means", "snapshot_similarity", "snapshot_summary", "first_step_above", "active_units", "collapse_scores", "decoder_layers",
           "retrain_schedule", "layer_module", "reset_layers", "prepare_transfer", "transfer", "reconstruction_loss",
           "encode_means", "factor_classification", "ENCODER_PARTS"]

OBJECTIVES = ("beta_vae", "beta_tc_vae", "annealed_vae", "dip_vae_ii")
REGULARISER = {"beta_vae": "beta", "beta_tc_vae": "beta", "annealed_vae": "c_max", "dip_vae_ii": "lambda_od"}
OBJECTIVE_LABELS = {"beta_vae": "β-VAE", "beta_tc_vae": "β-TC-VAE", "annealed_vae": "Annealed VAE",
                    "dip_vae_ii": "DIP-VAE-II"}
METRICS = ("linear_cka", "procrustes")
ENCODER_PARTS = ("encoder", "latent", "sampled", "decoder")


# -- data ---------------------------------------------------------------------------------------------------------
CHANNELS = {"cars3d": 3, "celeba": 3}  # the papers' other datasets are grey
STAND_INS = {"symsol": "symsol_like"}  # generated offline sets that take a real dataset's place


def paper_datasets(names: Sequence[str], root=None, need_factors: bool = False) -> list[str]:
    """The datasets of ``names`` that can be loaded here: a real dataset whose files are missing from the data
    folder (``root`` or ``REPLAB_DATA``) is replaced by its generated stand-in (Symsol by ``symsol_like``) or,
    without one (Cars3D, smallNORB), left out, with a warning naming it. With ``need_factors`` (pages that classify
    factors), a dataset whose files carry no factor classes (the public code's Symsol files) is treated the same
    way."""
    out = []
    for name in names:
        if name not in _data.names():
            raise ValueError(f"names: unknown dataset {name!r}; known: {_data.names()}")
        try:
            loaded = _data.load(name, split="test", root=root)
            if need_factors and loaded.factor_classes is None:
                raise FileNotFoundError("its files carry no factor classes, which this page classifies")
        except FileNotFoundError as err:
            stand_in = STAND_INS.get(name)
            warnings.warn(f"{name}: {err}; " + (f"using {stand_in} instead" if stand_in else "left out"),
                          stacklevel=2)
            if stand_in is not None and stand_in not in out:
                out.append(stand_in)
            continue
        if name not in out:
            out.append(name)
    return out


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


def load_images(dataset: str, n: int, seed: int = 0, image_size: int = 64, split: str = "train",
                cache: ArtifactCache | None = None) -> ImageSet:
    """``n`` examples of ``dataset``'s ``split`` (all of them when the split is smaller) drawn with ``seed``,
    area-resized to ``image_size``, cached (the generators render each image, which costs seconds per
    thousand)."""
    if dataset not in _data.names():
        raise ValueError(f"dataset: unknown {dataset!r}; known: {_data.names()}")
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    spec = {"dataset": dataset, "n": n, "seed": seed, "image_size": image_size, "split": split}

    def compute():
        ds = _data.load(dataset, split=split)
        ds = ds.sample(min(n, len(ds)), seed=seed)
        images = resize_area(ds.images, image_size)
        classes = ds.factor_classes
        if classes is None and ds.labels is not None:
            classes = ds.labels[:, None]
        names = list(ds.factor_names) if ds.factor_classes is not None else ["label"]
        return {"images": images, "factor_classes": classes, "factor_names": names}

    store = cache if cache is not None else ArtifactCache()
    payload = store.get_or_compute("bonheme-data", spec, compute)
    return ImageSet(payload["images"], payload["factor_classes"], tuple(payload["factor_names"]), spec)


# -- the shared model set --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """One VAE of the shared set."""
    objective: str
    strength: float
    seed: int
    dataset: str = "dsprites"

    @property
    def label(self) -> str:
        return f"{OBJECTIVE_LABELS[self.objective]} {REGULARISER[self.objective]}={self.strength:g} s{self.seed}"


def model_config(S, dataset: str = "dsprites") -> _models.Conv64Config:
    """The disentanglement_lib conv VAE at the profile's image size and widths, with ``dataset``'s channels."""
    return _models.Conv64Config(image_size=int(S.image_size), widths=tuple(S.widths), hidden=int(S.hidden),
                                channels=CHANNELS.get(dataset, 1))


def objective_params(S, objective: str, strength: float) -> dict:
    """The objective's hyper-parameters for one regularisation ``strength`` (disentanglement_lib's settings).

    β-TC-VAE uses the normalised minibatch-weighted-sampling TC with N = ``n_train``; the Annealed VAE keeps
    γ = 1000 and ramps C over ``annealing_fraction`` of the steps (100,000 of 300,000 in the paper)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    if objective == "beta_vae":
        return {"beta": float(strength)}
    if objective == "beta_tc_vae":
        return {"beta": float(strength), "dataset_size": int(S.n_train)}
    if objective == "annealed_vae":
        return {"c_max": float(strength), "gamma": 1000.0,
                "iteration_threshold": max(1, round(S.steps * S.annealing_fraction))}
    return {"lambda_od": float(strength)}


def snapshot_steps(S) -> tuple[int, ...]:
    """``n_snapshots`` evenly spaced steps, the last one the end of training (``keep_n: 5`` of the public code)."""
    k = int(S.n_snapshots)
    return tuple(sorted({max(1, round(S.steps * i / k)) for i in range(1, k + 1)}))


def train_config(S, member: Member) -> TrainConfig:
    return TrainConfig(model=model_config(S, member.dataset), objective=member.objective,
                       objective_params=objective_params(S, member.objective, member.strength),
                       dataset=member.dataset, batch_size=int(S.batch_size), steps=int(S.steps), lr=float(S.lr),
                       seed=int(member.seed), snapshot_steps=snapshot_steps(S),
                       checkpoint_every=min(int(S.steps), 10_000), log_every=max(1, int(S.steps) // 200))


def model_set(S, objectives: Sequence[str] = OBJECTIVES, primary_only: bool = False, seeds=None,
              dataset: str = "dsprites") -> list[Member]:
    """The shared set on ``dataset``: each objective's primary strength with every seed, its other strengths
    with ``other_seeds`` (skipped with ``primary_only``)."""
    out = []
    for obj in objectives:
        strengths = S.strengths[obj]
        for seed in (S.seeds if seeds is None else seeds):
            out.append(Member(obj, float(strengths[0]), int(seed), dataset))
        if not primary_only:
            for s in strengths[1:]:
                out += [Member(obj, float(s), int(seed), dataset) for seed in S.other_seeds]
    return out


def _training_data(S, dataset: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    images = load_images(dataset, int(S.n_train), 0, int(S.image_size), "train")
    return images.images, images.factor_classes


def train_members(S, members: Sequence[Member], cache: ArtifactCache | None = None,
                  executor=None) -> dict[Member, TrainedRun]:
    """Train (or load) every member; through :func:`replab.grid.run_grid` when ``S.parallel`` or an executor
    is given, else in this process, members that share an architecture stacked
    (:func:`replab.train.groups.train_many`)."""
    runs = {}
    by_data: dict[str, list[Member]] = {}
    for m in members:
        by_data.setdefault(m.dataset, []).append(m)
    for dataset, group in by_data.items():
        data = _training_data(S, dataset)
        configs = [train_config(S, m) for m in group]
        if S.parallel or executor is not None:
            from ..grid import run_grid
            run_grid(configs, executor=executor, cache=cache, data=data)
        # members sharing an architecture train together as one stacked model (or load, once run_grid stored them)
        runs.update(zip(group, train_many(configs, cache, data=data)))
    return runs


def train_classifier(S, steps: int, seed: int = 0, factor: str = "shape",
                     cache: ArtifactCache | None = None) -> TrainedRun:
    """A classifier with the VAE encoder's architecture (App. H) trained on one dSprites factor."""
    images, classes = _training_data(S, "dsprites")
    names = load_images("dsprites", int(S.n_train), 0, int(S.image_size)).factor_names
    col = names.index(factor)
    n_classes = int(classes[:, col].max()) + 1
    config = TrainConfig(model=_models.DlibClassifierConfig(n_classes=n_classes, image_size=int(S.image_size),
                                                            widths=tuple(S.widths), hidden=int(S.hidden)),
                         objective="cross_entropy", dataset="dsprites", batch_size=int(S.batch_size),
                         steps=int(steps), lr=float(S.lr), seed=seed, label_column=col,
                         checkpoint_every=min(int(steps), 10_000), log_every=max(1, int(steps) // 200))
    return train(config, cache, data=(images, classes))


def train_fc(S, member: Member, steps: int, width: int, cache: ArtifactCache | None = None) -> TrainedRun:
    """The fully connected disentanglement_lib VAE (App. G) for one member, on the same data."""
    s = int(S.image_size)
    fc = _models.FCConfig(input_shape=(CHANNELS.get(member.dataset, 1), s, s), encoder_widths=(width, width),
                          decoder_widths=(width,) * 3)
    config = TrainConfig(model=fc, objective=member.objective,
                         objective_params=objective_params(S, member.objective, member.strength),
                         dataset=member.dataset, batch_size=int(S.batch_size), steps=int(steps), lr=float(S.lr),
                         seed=member.seed, snapshot_steps=snapshot_steps(S) if steps == S.steps else (),
                         checkpoint_every=min(int(steps), 10_000), log_every=max(1, int(steps) // 200))
    return train(config, cache, data=_training_data(S, member.dataset))


# -- similarity -----------------------------------------------------------------------------------------------------
def noise_seed(model: nn.Module) -> int:
    """A seed that is a function of the model's weights: the same model always draws the same noise for its
    ``sampled`` layer, two different models draw independent noise (as two separately run models would; a shared
    seed would make two collapsed posteriors, both N(0, I), look identical)."""
    h = hashlib.blake2b(digest_size=8)
    for t in model.state_dict().values():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


@torch.no_grad()
def representations(model: nn.Module, x: torch.Tensor, seed: int | None = None, batch_size: int = 250,
                    device="auto") -> dict[str, torch.Tensor]:
    """Every named layer's activations over x (float in [0, 1]), flattened to (n, features), float32 on the CPU.

    The ``sampled`` layer draws its noise from a generator seeded with ``seed`` (default: :func:`noise_seed` of
    the model), so the same call gives the same numbers."""
    dev = get_device(device)
    model = model.to(dev).eval()
    g = torch.Generator(device=dev).manual_seed(noise_seed(model) if seed is None else seed)
    vae = isinstance(model, _models.VAE)
    chunks: dict[str, list[torch.Tensor]] = {}
    for start in range(0, x.shape[0], batch_size):
        batch = x[start:start + batch_size].to(dev)
        reps = model.representations(batch, generator=g) if vae else model.representations(batch)
        for name, t in reps.items():
            chunks.setdefault(name, []).append(t.reshape(t.shape[0], -1).float().cpu())
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def similarity_tables(reps: dict, pairs: Sequence[tuple], metrics: Sequence[str] = METRICS,
                      n_procrustes: int | None = None) -> dict[tuple, dict[str, pd.DataFrame]]:
    """Layer × layer similarity tables for each pair ``(a, b)`` of keys of ``reps`` (models, snapshots; a pair may
    be ``(a, a)``), for each metric plus ``"min"``, the element-wise smaller of the metrics (the paper keeps the
    smaller of CKA and Procrustes where they disagree): ``{(a, b): {metric: table}}``, rows the layers of a.

    Every pair comes from one :func:`replab.similarity.similarity_grid` per metric, so each (model, layer) is
    reduced once however many pairs it enters. ``n_procrustes`` computes Procrustes on the first that many
    examples only (its cost grows as n³ per pair; with fewer examples than features it overestimates similarity,
    which the minimum then leaves to CKA)."""
    keys = list(dict.fromkeys(k for pair in pairs for k in pair))
    label = {k: str(i) for i, k in enumerate(keys)}
    grid_pairs = [(label[a], label[b]) for a, b in pairs]
    frames = {}
    for m in metrics:
        cut = n_procrustes if m == "procrustes" else None
        models = {label[k]: {name: t[:cut] for name, t in reps[k].items()} for k in keys}
        frames[m] = similarity_grid(models, metrics=[m], pairs=grid_pairs)
    out = {}
    for a, b in pairs:
        tables = {m: grid_table(frames[m], label[a], label[b], m) for m in metrics}
        if len(metrics) > 1:
            first = tables[metrics[0]]
            tables["min"] = pd.DataFrame(np.minimum.reduce([tables[m].loc[first.index, first.columns].to_numpy()
                                                            for m in metrics]), index=first.index,
                                         columns=first.columns)
        out[(a, b)] = tables
    return out


def mean_tables(tables: Sequence[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The element-wise mean of several ``{metric: table}`` results (the paper averages over seed pairs)."""
    if not tables:
        raise ValueError("tables: give at least one set of tables")
    return {k: sum(t[k] for t in tables) / len(tables) for k in tables[0]}


def similarity(reps_a: dict, reps_b: dict | None = None, metrics: Sequence[str] = METRICS,
               n_procrustes: int | None = None) -> dict[str, pd.DataFrame]:
    """:func:`similarity_tables` of one pair: layers of a (rows) against layers of b (columns; default a itself)."""
    if reps_b is None:
        return similarity_tables({"a": reps_a}, [("a", "a")], metrics, n_procrustes)[("a", "a")]
    return similarity_tables({"a": reps_a, "b": reps_b}, [("a", "b")], metrics, n_procrustes)[("a", "b")]


def model_similarity(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None,
                     metrics: Sequence[str] = METRICS, n_procrustes: int | None = None) -> dict[str, pd.DataFrame]:
    """:func:`similarity` of two models' ``layers`` (default: all) over the same inputs ``x``."""
    reps_a, reps_b = representations(model_a, x), representations(model_b, x)
    if layers is not None:
        missing = [n for n in layers if n not in reps_a or n not in reps_b]
        if missing:
            raise ValueError(f"layers: {missing} are not layers of both models; layers: {list(reps_a)}")
        reps_a, reps_b = ({n: r[n] for n in layers} for r in (reps_a, reps_b))
    return similarity(reps_a, reps_b, metrics, n_procrustes)


def seed_pairs(a_models: Sequence[Member], b_models: Sequence[Member]) -> list[tuple[Member, Member]]:
    """Every pair (a, b) with different seeds, so no model is compared with itself or with its own seed."""
    return [(a, b) for a in a_models for b in b_models if a.seed != b.seed]


def pairwise_mean(reps: dict, pairs: Sequence[tuple], n_procrustes: int | None = None,
                  metrics: Sequence[str] = METRICS) -> dict[str, pd.DataFrame]:
    """Similarity tables averaged over ``pairs`` of keys of ``reps`` (the paper averages over seed pairs)."""
    if not pairs:
        raise ValueError("pairs: give at least one pair of models")
    tables = similarity_tables(reps, pairs, metrics, n_procrustes)
    return mean_tables([tables[(a, b)] for a, b in pairs])


def diagonal(table: pd.DataFrame) -> pd.Series:
    """The similarity of each layer with the same layer of the other model (layers present in both)."""
    names = [n for n in table.index if n in table.columns]
    return pd.Series([float(table.loc[n, n]) for n in names], index=names)


def _part(name: str) -> str | None:
    if name.startswith("encoder."):
        return "encoder"
    if name in ("mean", "variance"):
        return "latent"
    if name == "sampled":
        return "sampled"
    if name.startswith("decoder.") or name == "output":
        return "decoder"
    return None


def part_means(table: pd.DataFrame) -> dict[str, float]:
    """Mean of the diagonal over the encoder's hidden layers, mean+variance, sampled and the decoder+output."""
    d = diagonal(table)
    out = {}
    for part in ENCODER_PARTS:
        vals = [v for n, v in d.items() if _part(n) == part]
        if vals:
            out[part] = float(np.mean(vals))
    return out


def snapshot_similarity(run: TrainedRun, x: torch.Tensor, seed: int | None = None, metrics: Sequence[str] = METRICS,
                        n_procrustes: int | None = None) -> dict[int, dict[str, pd.DataFrame]]:
    """Each snapshot of ``run`` against the trained model (Fig. 2): ``{step: {metric: table}}``, rows the
    snapshot's layers, columns the final model's (the last step, the model itself, is left out)."""
    final = representations(run.model, x, seed)
    # One snapshot's activations at a time (at full, a model's activations over 10,000 images take gigabytes)
    return {step: similarity(representations(run.model_at(step), x, seed), final, metrics, n_procrustes)
            for step in sorted(run.snapshots) if step != run.config.steps}


def snapshot_summary(sims: dict[int, dict[str, pd.DataFrame]], metric: str = "min") -> pd.DataFrame:
    """Per snapshot step, the mean diagonal similarity of each part (encoder, latent, sampled, decoder)."""
    return pd.DataFrame({step: part_means(tables[metric]) for step, tables in sims.items()}).T.rename_axis("step")


def first_step_above(summary: pd.DataFrame, threshold: float, final_step: int) -> dict[str, int]:
    """For each part, the first snapshot step whose similarity with the final model reaches ``threshold``
    (``final_step`` when none does before the end)."""
    out = {}
    for part in summary.columns:
        hit = summary.index[summary[part] >= threshold]
        out[part] = int(hit.min()) if len(hit) else int(final_step)
    return out


# -- posterior collapse ----------------------------------------------------------------------------------------------
@torch.no_grad()
def active_units(model, x: torch.Tensor, threshold: float = 0.01) -> int:
    """Active units (Burda et al. 2016): latent dimensions whose posterior mean varies across inputs,
    Var_x(E[z_j | x]) > ``threshold``."""
    mu = model.encode(x.to(next(model.parameters()).device))[0]
    return int((mu.var(dim=0) > threshold).sum())


def collapse_scores(model, x: torch.Tensor, seed: int | None = None) -> dict[str, float]:
    """Active units and two CKA detectors of collapse: CKA(sampled, mean) and CKA(sampled, input) of one model."""
    reps = representations(model, x, seed)
    table = similarity({k: reps[k] for k in ("input", "mean", "sampled")}, metrics=["linear_cka"])["linear_cka"]
    return {"active_units": active_units(model, x), "cka_sampled_mean": float(table.loc["sampled", "mean"]),
            "cka_sampled_input": float(table.loc["sampled", "input"])}


# -- transfer --------------------------------------------------------------------------------------------------------
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


def transfer(source: TrainedRun, target: ImageSet, layers: Sequence[str], steps: int, reset: bool = True,
             legacy_freeze_when_not_reset: bool = False, lr: float | None = None, batch_size: int | None = None,
             seed: int = 0, cache: ArtifactCache | None | bool = None, device="auto") -> nn.Module:
    """The source VAE retrained on ``target`` with everything frozen except ``layers`` (``bin/transfer``).

    The retrained layers are re-initialised (``reset=True``, the public default) or fine-tuned from the source
    weights (``reset=False``), and trained for ``steps`` Adam updates with the source's objective and
    hyper-parameters (its learning rate and batch size unless given), through the training engine: a
    :class:`~replab.train.TrainConfig` with ``init_from`` the source's key, cached and resumable like every run
    (``cache=False``: not stored). Returns the model in eval mode.
    """
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0):
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    cfg = source.config
    order = [n for n in source.model.layer_names() if n in set(layers)]
    layers = tuple(order + [n for n in layers if n not in set(order)])  # model order: one set, one run
    start = _models.build(cfg.model)
    start.load_state_dict(source.model.state_dict())
    if not _models.prepare_transfer(start, layers, reset, legacy_freeze_when_not_reset, seed) or not steps:
        return start.to(get_device(device)).eval()  # nothing trains: the source with its reset layers
    config = dataclasses.replace(
        cfg, init_from=source.key or run_key(cfg), train_layers=layers, reset_layers=reset,
        legacy_freeze_when_not_reset=legacy_freeze_when_not_reset, steps=steps, seed=seed,
        lr=cfg.lr if lr is None else float(lr), batch_size=cfg.batch_size if batch_size is None else int(batch_size),
        dataset=str(target.spec.get("dataset", cfg.dataset)), n=None,
        snapshot_steps=(), device=device if isinstance(device, str) else str(device))
    return train(config, cache, data=target.images, init=source).model


@torch.no_grad()
def reconstruction_loss(model, x: torch.Tensor, batch_size: int = 250) -> float:
    """Mean over examples of −log p(x | z = E[z|x]) (the Bernoulli cross-entropy summed over pixels)."""
    dev = next(model.parameters()).device
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size].to(dev)
        recon = model.decode(model.encode(xb)[0])
        total += float(-model.log_likelihood(recon, xb).sum())
    return total / x.shape[0]


# -- classification from latent means -------------------------------------------------------------------------------
@torch.no_grad()
def encode_means(model, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """The posterior means E[z | x] (z_mean of the public code), (n, d) float64."""
    dev = next(model.parameters()).device
    out = [model.encode(x[s:s + batch_size].to(dev))[0].double().cpu() for s in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy()


def factor_classification(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                          factor_names: Sequence[str], classifiers: Sequence[str] = ("logistic_regression",
                                                                                     "gradient_boosting"),
                          gb_estimators: int = 100, lr_cs: int = 10, seed: int = 0) -> pd.DataFrame:
    """One classifier per factor on latent means (``bin/evaluate_downstream_task``): logistic regression
    (``LogisticRegressionCV``) and gradient boosting (``GradientBoostingClassifier``). Factors with one class
    in the training set are skipped. Returns rows (classifier, factor, n_classes, train_accuracy,
    test_accuracy)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    z_train, z_test = np.asarray(z_train, float), np.asarray(z_test, float)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if y_train.ndim != 2 or y_train.shape[1] != len(factor_names) or y_test.shape[1:] != y_train.shape[1:]:
        raise ValueError(f"y_train and y_test must have one column per factor ({len(factor_names)}), got "
                         f"{y_train.shape} and {y_test.shape}")
    if z_train.shape[0] != y_train.shape[0] or z_test.shape[0] != y_test.shape[0]:
        raise ValueError("z and y must have the same number of rows")
    known = ("logistic_regression", "gradient_boosting")
    bad = [c for c in classifiers if c not in known]
    if bad:
        raise ValueError(f"classifiers: unknown {bad}; known: {known}")
    rows = []
    for j, name in enumerate(factor_names):
        if len(np.unique(y_train[:, j])) < 2:
            continue
        for clf_name in classifiers:
            if clf_name == "logistic_regression":
                # standardised inputs and enough iterations that lbfgs converges at the weakest penalties too
                clf = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=lr_cs, cv=3, max_iter=5000))
            else:
                clf = GradientBoostingClassifier(n_estimators=gb_estimators, random_state=seed)
            with warnings.catch_warnings():  # scikit-learn's announcements of future defaults
                warnings.simplefilter("ignore", FutureWarning)
                clf.fit(z_train, y_train[:, j])
            rows.append({"classifier": clf_name, "factor": name, "n_classes": int(len(np.unique(y_train[:, j]))),
                         "train_accuracy": float(clf.score(z_train, y_train[:, j])),
                         "test_accuracy": float(clf.score(z_test, y_test[:, j]))})
    return pd.DataFrame(rows)
