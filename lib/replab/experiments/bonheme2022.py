"""Bonheme & Grześ (2022, "How do VAEs learn?"): the model set every Bonheme page shares, the layer × layer
similarity tables, and the sections of ``notebooks/bonheme2022``.

One small set of disentanglement_lib convolutional VAEs (β-VAE, β-TC-VAE, Annealed VAE, DIP-VAE-II; a primary
and a secondary strength; several seeds) is trained once through :mod:`replab.train` (cached), or
:func:`replab.grid.run_grid` at ``full``. ``beta_tc_vae`` is a real β-TC-VAE (the public config's is a β-VAE).
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from .. import data as _data
from .. import models as _models
from .. import profiles
from ..cache import ArtifactCache
from ..layer_similarity import (collapse_scores, diagonal, first_step_above, mean_tables, part_means,  # noqa: F401
                                representations, similarity, similarity_tables, snapshot_parts, snapshot_similarity,
                                snapshot_summary)
from ..transfer import CHANNELS, load_images, paper_datasets
from ..train import TrainConfig, TrainedRun, train_group
from ..train.groups import default_group_size, groups, train_many

OBJECTIVES = ("beta_vae", "beta_tc_vae", "annealed_vae", "dip_vae_ii")
REGULARISER = {"beta_vae": "beta", "beta_tc_vae": "beta", "annealed_vae": "c_max", "dip_vae_ii": "lambda_od"}
OBJECTIVE_LABELS = {"beta_vae": "β-VAE", "beta_tc_vae": "β-TC-VAE", "annealed_vae": "Annealed VAE",
                    "dip_vae_ii": "DIP-VAE-II"}
PAGES = tuple(f"bonheme2022/{p}" for p in ("01-encoder-before-decoder", "02-posterior-collapse", "03-objectives"))
PAGES_2023 = tuple(f"bonheme2023/{p}" for p in ("02-generic-encoders", "03-retraining-the-decoder",
                                                 "04-shared-variables"))


@profiles.experiment("bonheme2022.models", pages=PAGES + PAGES_2023)
@dataclass(frozen=True)
class Models:
    """The VAE set every page of both papers shares (the same sizes give the same cached models)."""

    image_size: int = profiles.size("side of the square images", unit="pixels")
    widths: tuple[int, ...] = profiles.size("channels of the four convolutions")
    hidden: int = profiles.size("units of the dense layer between the convolutions and the latent heads")
    n_train: int = profiles.size("training images per dataset (0: the whole training split)", unit="images")
    batch_size: int = profiles.size("images per Adam step")
    steps: int = profiles.size("training steps of each VAE", unit="steps")
    lr: float = profiles.size("Adam's learning rate")
    seeds: tuple[int, ...] = profiles.size("seeds of each objective's primary strength")
    other_seeds: tuple[int, ...] = profiles.size("seeds of each objective's other strengths")
    n_snapshots: int = profiles.size("snapshots kept, evenly spaced, the last at the end of training")
    strengths_beta_vae: tuple[float, ...] = profiles.size("β of the β-VAEs, the primary one first")
    strengths_beta_tc_vae: tuple[float, ...] = profiles.size("β of the β-TC-VAEs, the primary one first")
    strengths_annealed_vae: tuple[float, ...] = profiles.size("C_max of the Annealed VAEs, the primary one first",
                                                              unit="nats")
    strengths_dip_vae_ii: tuple[float, ...] = profiles.size("λ_od of the DIP-VAE-IIs, the primary one first")
    annealing_fraction: float = profiles.size("fraction of the steps over which the Annealed VAE ramps C")
    n_procrustes: int = profiles.size("examples Procrustes similarity is computed on", unit="images")
    transfer_datasets: tuple[str, ...] = profiles.size("(target, source) of the transfer pages", dataset="pair")
    parallel: bool = profiles.size("train the set through the grid runner, one process per model")

    def strengths(self, objective: str) -> tuple[float, ...]:
        """The regularisation strengths of ``objective``, the primary one first."""
        return getattr(self, f"strengths_{objective}")

    def primary(self, objective: str) -> float:
        return float(self.strengths(objective)[0])


def held_out_images(M: Models, dataset: str, n: int) -> torch.Tensor:
    """The ``n`` held-out images every page measures on (float in [0, 1])."""
    return load_images(dataset, n, seed=1, image_size=M.image_size, split="test").float()


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


def train_size(M: Models, dataset: str) -> int:
    """The training images of each VAE on ``dataset``: ``n_train``, or the whole training split's (``n_train = 0``)."""
    return int(M.n_train) if M.n_train else _split_size(dataset)


@functools.lru_cache(maxsize=None)
def _split_size(dataset: str) -> int:
    return len(_data.load(dataset, split="train"))


def objective_params(M: Models, objective: str, strength: float, dataset: str = "dsprites") -> dict:
    """The objective's hyper-parameters at one regularisation ``strength`` (disentanglement_lib's settings):
    β-TC-VAE's minibatch-weighted TC with N = the training images of ``dataset`` (:func:`train_size`); the
    Annealed VAE with γ = 1000 ramping C over ``annealing_fraction`` of the steps (100,000 of 300,000 in the
    paper)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    if objective == "beta_vae":
        return {"beta": float(strength)}
    if objective == "beta_tc_vae":
        return {"beta": float(strength), "dataset_size": train_size(M, dataset)}
    if objective == "annealed_vae":
        return {"c_max": float(strength), "gamma": 1000.0,
                "iteration_threshold": max(1, round(M.steps * M.annealing_fraction))}
    return {"lambda_od": float(strength)}


def snapshot_steps(M: Models) -> tuple[int, ...]:
    """``n_snapshots`` evenly spaced steps, the last one the end of training (``keep_n: 5`` of the public code)."""
    k = int(M.n_snapshots)
    return tuple(sorted({max(1, round(M.steps * i / k)) for i in range(1, k + 1)}))


def _config(M: Models, model, objective: str, steps: int, **kwargs) -> TrainConfig:
    return TrainConfig(model=model, objective=objective, batch_size=int(M.batch_size), steps=int(steps),
                       lr=float(M.lr), checkpoint_every=min(int(steps), 10_000), log_every=max(1, int(steps) // 200),
                       **kwargs)


def train_config(M: Models, member: Member) -> TrainConfig:
    """The disentanglement_lib conv VAE of ``member`` at the profile's image size and widths."""
    model = _models.Conv64Config(image_size=M.image_size, widths=M.widths, hidden=M.hidden,
                                 channels=CHANNELS.get(member.dataset, 1))
    return _config(M, model, member.objective, M.steps, dataset=member.dataset, seed=int(member.seed),
                   objective_params=objective_params(M, member.objective, member.strength, member.dataset),
                   snapshot_steps=snapshot_steps(M))


def model_set(M: Models, primary_only: bool = False, seeds: Sequence[int] | None = None,
              dataset: str = "dsprites") -> list[Member]:
    """The shared set on ``dataset``: each objective's primary strength with every seed, its other strengths
    with ``other_seeds`` (skipped with ``primary_only``)."""
    out = []
    for obj in OBJECTIVES:
        out += [Member(obj, M.primary(obj), int(seed), dataset) for seed in (M.seeds if seeds is None else seeds)]
        if not primary_only:
            out += [Member(obj, float(s), int(seed), dataset) for s in M.strengths(obj)[1:] for seed in M.other_seeds]
    return out


def _training_data(M: Models, dataset: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    images = load_images(dataset, M.n_train, 0, M.image_size, "train")
    return images.images, images.factor_classes


def train_members(M: Models, members: Sequence[Member], cache: ArtifactCache | None = None,
                  executor=None) -> dict[Member, TrainedRun]:
    """Train (or load) every member: through :func:`replab.grid.run_grid` when ``M.parallel`` or an executor
    is given, else in this process, members that share an architecture stacked (:func:`replab.train.groups.groups`:
    on a GPU the seeds and strengths of one objective, on every dataset of the same image shape, train as one
    model; on a CPU one after another)."""
    runs = {}
    by_data: dict[str, list[Member]] = {}
    for m in members:
        by_data.setdefault(m.dataset, []).append(m)
    data = {dataset: _training_data(M, dataset) for dataset in by_data}
    if M.parallel or executor is not None:
        from ..grid import run_grid
        for dataset, group in by_data.items():
            configs = [train_config(M, m) for m in group]
            run_grid(configs, executor=executor, cache=cache, data=data[dataset])
            runs.update(zip(group, train_many(configs, cache, data=data[dataset])))  # load what run_grid stored
        return runs
    ordered = [m for group in by_data.values() for m in group]
    configs = [train_config(M, m) for m in ordered]
    for idx in groups(configs, default_group_size(configs)):
        trained = train_group([configs[i] for i in idx], cache, data=[data[ordered[i].dataset] for i in idx])
        runs.update(zip((ordered[i] for i in idx), trained))
    return runs


def seed_pairs(a_models: Sequence[Member], b_models: Sequence[Member]) -> list[tuple[Member, Member]]:
    """Every pair (a, b) with different seeds, so no model is compared with itself or with its own seed."""
    return [(a, b) for a in a_models for b in b_models if a.seed != b.seed]


# -- the pages' sections ----------------------------------------------------------------------------------
@profiles.experiment("bonheme2022.encoder-before-decoder", pages=PAGES[:1])
@dataclass(frozen=True)
class EncoderBeforeDecoder:
    """§4.1, Fig. 2: each model against its own training snapshots."""

    n_examples: int = profiles.size("held-out images the similarities are computed on", unit="images")
    datasets: tuple[str, ...] = profiles.size("training sets (`full`: dSprites, Cars3D, smallNORB)",
                                                dataset="each")


@dataclass(frozen=True)
class Dynamics:
    """Fig. 2's inputs, keyed by model name: ``tables[name][step][metric]`` (snapshot against the trained model)
    and ``summaries[name]`` (diagonal means per part and step) of the shown seed, ``by_seed[seed][name]`` the
    summaries of every seed, and the trained models' table ``models``."""
    datasets: list
    models: pd.DataFrame
    tables: dict
    summaries: dict
    by_seed: dict


def training_dynamics(M: Models, S: EncoderBeforeDecoder, seed: int = 0) -> Dynamics:
    """The primary-strength VAEs of every seed on every dataset of ``S.datasets`` that is here, each snapshot
    compared with the trained model on held-out images (Procrustes on the first ``M.n_procrustes``); the
    tables are kept for ``seed``, the summaries for all."""
    used = paper_datasets(S.datasets)
    members = [m for d in used for m in model_set(M, primary_only=True, dataset=d)]
    runs = train_members(M, members)
    xs = {d: held_out_images(M, d, S.n_examples) for d in used}
    names = {m: OBJECTIVE_LABELS[m.objective] + ("" if len(used) == 1 else f" ({m.dataset})") for m in members}
    models = pd.DataFrame([{"model": m.label, "dataset": m.dataset, "steps": M.steps,
                            "snapshots": sorted(runs[m].snapshots),
                            "final reconstruction": round(float(runs[m].metrics["reconstruction"].iloc[-1]), 1),
                            "final KL": round(float(runs[m].metrics["kl"].iloc[-1]), 2)} for m in members])
    by_seed, tables = {}, {}
    for m in members:  # the shown seed's full tables; only the diagonals of the others
        t = snapshot_similarity(runs[m], xs[m.dataset], n_procrustes=M.n_procrustes) if m.seed == seed else None
        by_seed.setdefault(m.seed, {})[names[m]] = (snapshot_summary(t) if t is not None else
                                                    snapshot_parts(runs[m], xs[m.dataset], M.n_procrustes))
        tables.update({names[m]: t} if t is not None else {})
    return Dynamics(used, models, tables, by_seed[seed], by_seed)


def summary_table(dynamics: Dynamics) -> pd.DataFrame:
    """Every model's diagonal means per part and snapshot step, one frame (index: model, step)."""
    return pd.concat(dynamics.summaries, names=["model"])


def metric_disagreement(dynamics: Dynamics) -> pd.Series:
    """Per model, the mean |CKA − Procrustes| over all layer pairs and snapshots."""
    return pd.Series({k: float(pd.concat([(t["linear_cka"] - t["procrustes"]).abs() for t in sims.values()])
                               .to_numpy().mean()) for k, sims in dynamics.tables.items()},
                     name="mean |CKA − Procrustes|")


@profiles.experiment("bonheme2022.posterior-collapse", pages=PAGES[1:2])
@dataclass(frozen=True)
class PosteriorCollapse:
    """§4.1, Fig. 3: a well-regularised model against a collapsed one; CKA against active units."""

    n_examples: int = profiles.size("held-out images the similarities are computed on", unit="images")
    collapse_beta: float = profiles.size("β of the β-VAE whose posterior collapses")


@dataclass(frozen=True)
class Collapse:
    """Fig. 3's inputs: the well-behaved model's layers against the collapsed model's and a second well-behaved
    model's (``{metric: table}``, first seed), the column means of the latent layers (mean over seeds; per seed
    in ``by_seed``, columns ``(seed, comparison)``), and every model's detectors."""
    well: Member
    vs_collapsed: dict
    vs_well: dict
    columns: pd.DataFrame
    detectors: pd.DataFrame
    by_seed: pd.DataFrame


def posterior_collapse(M: Models, S: PosteriorCollapse) -> Collapse:
    """Per seed, the primary β-VAE against the β = ``S.collapse_beta`` β-VAE of its seed and the primary β-VAE of
    the next seed, layer by layer; then the active units and within-model CKA of every dSprites model of the set
    and of the collapsed ones (first rows)."""
    seeds = [int(s) for s in M.seeds]
    well = {s: Member("beta_vae", M.primary("beta_vae"), s) for s in seeds}
    collapsed = {s: Member("beta_vae", float(S.collapse_beta), s) for s in seeds}
    everything = list(collapsed.values()) + sorted(model_set(M), key=lambda m: m.seed, reverse=True)
    runs = train_members(M, everything)
    x = held_out_images(M, "dsprites", S.n_examples)
    tables, columns = {}, {}
    for i, s in enumerate(seeds):
        rows = representations(runs[well[s]].model, x)
        for name, other in (("vs collapsed", collapsed[s]), ("vs well-behaved", well[seeds[(i + 1) % len(seeds)]])):
            t = tables.setdefault((s, name), similarity(rows, representations(runs[other].model, x),
                                                        n_procrustes=M.n_procrustes))
            columns[s, name] = {n: float(t["min"][n].drop(index=["input"]).mean()) for n in ("mean", "variance",
                                                                                            "sampled")}
    detectors = pd.DataFrame([{"model": m.label, **collapse_scores(runs[m].model, x)} for m in everything])
    by_seed = pd.DataFrame(columns)
    return Collapse(well[seeds[0]], tables[seeds[0], "vs collapsed"], tables[seeds[0], "vs well-behaved"],
                    by_seed.T.groupby(level=1).mean().T, detectors, by_seed)


@profiles.experiment("bonheme2022.objectives", pages=PAGES[2:])
@dataclass(frozen=True)
class Objectives:
    """§4.1, Fig. 4 and Apps. G, H: across objectives and strengths, against classifiers, fully connected VAEs."""

    n_examples: int = profiles.size("held-out images the similarities are computed on", unit="images")
    classifier_steps: int = profiles.size("training steps of the App. H classifier", unit="steps")
    fc_steps: int = profiles.size("training steps of the App. G fully connected VAEs", unit="steps")
    fc_width: int = profiles.size("width of their dense layers (the paper: 1200)", unit="units")


@dataclass(frozen=True)
class ModelSet:
    """The trained dSprites set: its members, runs, the held-out images, every model's activations over them,
    and each objective's primary-strength members."""
    members: list
    runs: dict
    x: torch.Tensor
    reps: dict
    primary: dict

    def kl_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": m.label, "final KL": round(float(self.runs[m].metrics["kl"].iloc[-1]), 2)}
                             for m in self.members])


def trained_set(M: Models, S: Objectives) -> ModelSet:
    """Every dSprites VAE of the shared set (trained primary strengths first) and its activations."""
    members = model_set(M)
    runs = train_members(M, sorted(members, key=lambda m: (m.strength != M.primary(m.objective), m.seed)))
    x = held_out_images(M, "dsprites", S.n_examples)
    primary = {obj: [m for m in members if m.objective == obj and m.strength == M.primary(obj)]
               for obj in OBJECTIVES}
    return ModelSet(members, runs, x, {m: representations(runs[m].model, x) for m in members}, primary)


def across_objectives(M: Models, models: ModelSet) -> tuple[dict, dict, pd.DataFrame]:
    """Fig. 4: ``(across, strengths, parts)``: tables of every pair of objectives averaged over seed pairs with
    different seeds, keyed ``(a, b)``; each objective's primary strength against its others (same seed, the
    first of ``other_seeds``), keyed ``(objective, low, high)``; and the diagonal means per part of one pair per
    seed (seed i of a against seed i + 1 of b; every seed of ``other_seeds`` for the strengths), rows
    ``(kind, pair, seed)``. One similarity grid for all (each model's layers reduced once)."""
    pairs = {(a, b): seed_pairs(models.primary[a], models.primary[b])
             for a, b in itertools.combinations_with_replacement(OBJECTIVES, 2)}
    seeds = [int(s) for s in M.seeds]
    shifted = {(a, b, s): next(p for p in ps if p[0].seed == s and p[1].seed == seeds[(i + 1) % len(seeds)])
               for (a, b), ps in pairs.items() if ps for i, s in enumerate(seeds)}
    strength = {(m.objective, M.primary(m.objective), m.strength, m.seed):
                (Member(m.objective, M.primary(m.objective), m.seed), m) for m in models.members
                if m.strength != M.primary(m.objective)}
    grid = similarity_tables(models.reps, [p for ps in pairs.values() for p in ps] + list(strength.values()),
                             n_procrustes=M.n_procrustes)
    label = OBJECTIVE_LABELS
    parts = pd.DataFrame({**{("across objectives", f"{label[a]} vs {label[b]}", s): part_means(grid[p]["min"])
                             for (a, b, s), p in shifted.items()},
                          **{("across strengths", f"{label[o]} {lo:g} vs {hi:g}", s): part_means(grid[p]["min"])
                             for (o, lo, hi, s), p in strength.items()}}).T.rename_axis(["kind", "pair", "seed"])
    first = int(M.other_seeds[0])
    return ({k: mean_tables([grid[p] for p in ps]) for k, ps in pairs.items() if ps},
            {k[:3]: grid[p] for k, p in strength.items() if k[3] == first}, parts)
