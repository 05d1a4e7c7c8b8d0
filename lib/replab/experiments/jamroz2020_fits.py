"""The DP-GMM fits of Jamroż, Kurdziel & Opala (2020), shared by ``notebooks/jamroz2020`` 01-05: many chains fitted
side by side over worker processes (:func:`fit_dpgmms`), the relative entropy of each layer's fingerprints
(:func:`layer_complexity`, pages 01-02) and the DP-GMMs of the sampled codes of a β-sweep's VAEs
(:func:`fit_sweep_latents`, pages 03-05).
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Sequence

import pandas as pd
import torch

from .. import data as _data
from ..dpgmm import DPGMM, relative_entropy
from ..models import sample_codes
from ..train import TrainedRun

if TYPE_CHECKING:
    from .jamroz2020 import Chain
    from .jamroz2020_vae import VAESweep

__all__ = ["fit_dpgmms", "layer_complexity", "latent_codes", "fit_sweep_latents"]


def fit_dpgmms(points: Sequence[torch.Tensor], sizes: Chain, seeds: Sequence[int], n_jobs: int = 1
               ) -> list[DPGMM]:
    """A DP-GMM fitted to each point set of ``points`` (its chain seeded with the matching seed), in this process
    (``n_jobs=1``) or spread over ``n_jobs`` worker processes, the largest sets first.

    The Gibbs sampler is a compiled CPU loop, one chain per core, so on a machine with many cores the fits of a
    page's layers, groups and settings run side by side. Each fit depends only on its points and seed: the models
    are the same for every ``n_jobs``. The workers are started fresh (``spawn``): they never touch a GPU the
    calling process uses."""
    points, seeds = list(points), list(seeds)
    if len(points) != len(seeds):
        raise ValueError(f"seeds: expected one per point set ({len(points)}), got {len(seeds)}")
    if not (isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs >= 1):
        raise ValueError(f"n_jobs: expected a positive integer, got {n_jobs!r}")
    specs = [(x, sizes.n_sweeps, sizes.burn_in, sizes.thin, s) for x, s in zip(points, seeds)]
    if n_jobs == 1 or len(specs) < 2:
        return [_fit_dpgmm(spec) for spec in specs]
    # a sweep costs about N·D² (points times squared dimension): start the dearest fits first
    order = sorted(range(len(specs)), key=lambda i: -specs[i][0].shape[0] * specs[i][0].shape[1] ** 2)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(specs)), mp_context=context) as pool:
        futures = {i: pool.submit(_fit_dpgmm, specs[i]) for i in order}
        return [futures[i].result() for i in range(len(specs))]


def _fit_dpgmm(spec: tuple) -> DPGMM:
    x, n_sweeps, burn_in, thin, seed = spec
    return DPGMM(n_sweeps=n_sweeps, burn_in=burn_in, thin=thin, seed=seed).fit(x)


def _complexity_row(model: DPGMM, x: torch.Tensor, layer: int, name: str, sizes: Chain, seed: int,
                    labels: dict) -> dict:
    re = relative_entropy(model, n_samples=sizes.n_samples, seed=seed)
    return {**labels, "layer": layer, "name": name, "mean": re.mean, "min": re.min, "max": re.max,
            "components": float(model.n_components_.double().mean()), "n_points": x.shape[0], "d": x.shape[1]}


def layer_complexity(points: dict[str, torch.Tensor], sizes: Chain, seed: int = 0, n_jobs: int = 1, **labels
                     ) -> pd.DataFrame:
    """Relative entropy (Eq. 7) of the DP-GMM of each layer's fingerprints: one row per layer.

    Columns: ``layer`` (1-based index), ``mean``/``min``/``max`` over kept sweeps, ``components`` (mean count),
    ``n_points``, ``d``, and every keyword of ``labels`` (e.g. ``condition="random"``) as a constant column.
    ``n_jobs`` worker processes fit the layers' DP-GMMs side by side (:func:`fit_dpgmms`).
    """
    models = fit_dpgmms(list(points.values()), sizes, [seed] * len(points), n_jobs)
    return pd.DataFrame([_complexity_row(model, x, i, name, sizes, seed, labels)
                         for i, ((name, x), model) in enumerate(zip(points.items(), models), start=1)])


def latent_codes(run: TrainedRun, v: VAESweep, seed: int = 0, split: str = "test") -> torch.Tensor:
    """One sampled code per image (:func:`replab.models.sample_codes`) of ``v.n_codes`` images of ``split`` (0:
    all), drawn with ``seed``."""
    ds = _data.load(run.config.dataset, split=split)
    if v.n_codes and v.n_codes < len(ds):
        ds = ds.sample(v.n_codes, seed=seed)
    generator = torch.Generator(device=next(run.model.parameters()).device)
    generator.manual_seed(seed)
    return sample_codes(run.model, ds.images, generator)


def fit_sweep_latents(runs: dict, v: VAESweep, n_jobs: int = 1) -> dict:
    """:func:`fit_latents` of every VAE of a sweep (``{(objective, β, seed): run}``, each chain seeded with the
    VAE's seed), the codes drawn here and the DP-GMMs fitted over ``n_jobs`` worker processes
    (:func:`fit_dpgmms`): ``{key: (fitted DPGMM, codes)}``, the same for every ``n_jobs``."""
    codes = {k: latent_codes(run, v, seed=k[2]) for k, run in runs.items()}
    models = fit_dpgmms(list(codes.values()), v, [k[2] for k in codes], n_jobs)
    return {k: (model, codes[k]) for k, model in zip(codes, models)}
