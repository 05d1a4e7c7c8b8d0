"""The VAE experiments of Jamroż, Kurdziel & Opala (2020), ``notebooks/jamroz2020`` 03-05 (the CNN pages and what
the pages share are in :mod:`.jamroz2020`).

- β-sweeps (Section 5): β-VAEs and MMD-VAEs; the DP-GMM of the sampled test-set codes gives the relative entropy
  and the total correlation (Eqs. 7 and 10) of the aggregated posterior, and a sampler for latent codes.
- Sample quality (Section 5.2, Fig. 4, made numeric here): the Fréchet distance between features of a classifier
  trained on the same data, for real and decoded images, and that classifier's confidence on the decoded images.
  On a labelled set the classifier learns the classes; on CelebA, which has no classes, its 40 binary attributes.

Losses follow the public code (reference notes §1.5): Adam, σ² = 0.3 for the β-VAE's Gaussian decoder, a plain
SSE (σ² = 0.5) and the prior N(0, 2I) for the MMD-VAE.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from .. import data as _data
from .. import profiles
from ..activations import capture
from ..cache import ArtifactCache
from ..distributions import student_t_marginal_mixture
from ..dpgmm import DPGMM, relative_entropy, total_correlation
from ..grid import train_runs
from ..models import MLPConfig, WAECelebAConfig
from ..similarity import frechet_distance
from ..train import TrainConfig, TrainedRun
from .jamroz2020 import (Chain, CNNTraining, accuracy, cnn_config, has_labels, image_shape, n_train, normalise,
                         real_images, steps, train_size)
from .jamroz2020_fits import fit_sweep_latents, latent_codes

__all__ = ["VAESweep", "Quality", "OBJECTIVES", "prior_variance", "vae_config", "latent_codes", "fit_latents", "fit_sweep_latents",
           "latent_information",
           "draw_codes", "decode", "classifier_outputs", "sample_quality", "frechet_setup", "vae_runs",
           "latent_table", "over_seeds", "QualitySetup", "quality_setup", "joint_vs_factorial", "prior_vs_dpgmm"]

_PAGES = ("jamroz2020/03-vae-latent-complexity", "jamroz2020/04-latent-dependence", "jamroz2020/05-better-samples")
OBJECTIVES = {"β-VAE": "beta_vae", "MMD-VAE": "mmd_vae"}   # the pages' names of the two objectives


@profiles.experiment("jamroz2020.vae", pages=_PAGES)
@dataclass(frozen=True)
class VAESweep(Chain):
    """Sec. 5.1: the β-sweep of both objectives and the DP-GMM of each VAE's sampled test-set codes."""

    dataset: str = profiles.size("dataset (mnist10k offline; celeba with real files)", dataset="one")
    arch: str = profiles.size('"mlp" (28×28 digits) or "wae" (the WAE CelebA conv VAE)')
    widths: tuple[int, ...] = profiles.size('conv widths of the "wae" architecture')
    latent_dim: int = profiles.size("latent dimensions")
    betas: tuple[float, ...] = profiles.size("weights β of the regulariser, the sweep")
    n_train: int = profiles.size("training images (0: the whole split)", unit="images")
    epochs: int = profiles.size("passes over the training images")
    batch_size: int = profiles.size("images per Adam step", unit="images")
    lr: float = profiles.size("Adam learning rate")
    n_codes: int = profiles.size("test images encoded for the DP-GMM (0: the whole test split)", unit="images")
    n_seeds: int = profiles.size("independent VAEs per (objective, β), from seeds seed, seed + 1, ...")


@profiles.experiment("jamroz2020.quality", pages=_PAGES[1:])
@dataclass(frozen=True)
class Quality:
    """Sec. 5.2 made numeric: decoded samples and the classifier that scores them."""

    n_show: int = profiles.size("decoded samples shown per grid", unit="images")
    n_quality: int = profiles.size("decoded samples for the Fréchet distance and the confidence", unit="images")
    classifier_depth: int = profiles.size("the Fréchet classifier: conv layers of its VGG net (8 or 11)")
    classifier_width: int = profiles.size("the Fréchet classifier: channels of its last conv layer")
    classifier_n_train: int = profiles.size("the Fréchet classifier: training images (0: all)", unit="images")
    classifier_epochs: int = profiles.size("the Fréchet classifier: passes over its training images")
    classifier_batch_size: int = profiles.size("the Fréchet classifier: images per SGD step", unit="images")


def prior_variance(config: TrainConfig) -> float:
    """The variance of the VAE's prior: 2 for the MMD-VAE of the public code, 1 for the β-VAE."""
    return float(config.objective_params.get("prior_variance", 2.0)) if config.objective == "mmd_vae" else 1.0


def vae_config(v: VAESweep, objective: str = "beta_vae", beta: float = 1.0, *, seed: int = 0,
               device: str = "auto") -> TrainConfig:
    """One VAE of the β-sweep: ``objective`` "beta_vae" (KL) or "mmd_vae" (IMQ MMD, prior N(0, 2I)).

    ``v.arch="mlp"`` is the MLP VAE (for 28×28 digits), ``"wae"`` the WAE CelebA conv VAE with ``v.widths``. The
    Gaussian decoder has σ² = 0.3 for the β-VAE and σ² = 0.5 (a plain SSE) for the MMD-VAE, as the public code.
    """
    if objective not in ("beta_vae", "mmd_vae"):
        raise ValueError(f"objective: expected 'beta_vae' or 'mmd_vae', got {objective!r}")
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise ValueError(f"beta: expected a positive number, got {beta!r}")
    channels, size = image_shape(v.dataset)
    variance = 0.3 if objective == "beta_vae" else 0.5
    if v.arch == "mlp":
        model = MLPConfig(latent_dim=v.latent_dim, input_shape=(channels, size, size), likelihood="gaussian",
                          output_variance=variance)
    elif v.arch == "wae":
        model = WAECelebAConfig(latent_dim=v.latent_dim, channels=channels, image_size=size, widths=tuple(v.widths),
                                output_variance=variance)
    else:
        raise ValueError(f"arch: expected 'mlp' or 'wae', got {v.arch!r}")
    params = {"beta": float(beta)}
    if objective == "mmd_vae":
        params.update(prior_variance=2.0, unbiased=False)
    n = n_train(v.dataset, v.n_train or None)
    return TrainConfig(model=model, objective=objective, objective_params=params, dataset=v.dataset, split="train",
                       n=None if n == train_size(v.dataset) else n, batch_size=v.batch_size,
                       steps=steps(n, v.epochs, v.batch_size), lr=v.lr, optimizer="adam", seed=seed,
                       checkpoint_every=10_000, log_every=10, device=device)


def fit_latents(run: TrainedRun, v: VAESweep, seed: int = 0, split: str = "test") -> tuple[DPGMM, torch.Tensor]:
    """The DP-GMM of :func:`latent_codes`: ``(fitted DPGMM, codes)``."""
    z = latent_codes(run, v, seed, split)
    return DPGMM(n_sweeps=v.n_sweeps, burn_in=v.burn_in, thin=v.thin, seed=seed).fit(z), z


def _latent_key(run: TrainedRun, v: VAESweep, seed: int) -> dict:
    return {"run": run.key or asdict(run.config), "n_codes": v.n_codes or None, "n_sweeps": v.n_sweeps,
            "burn_in": v.burn_in, "thin": v.thin, "n_samples": v.n_samples, "seed": seed}


def latent_information(run: TrainedRun, v: VAESweep, seed: int = 0, cache: ArtifactCache | None = None,
                       model: DPGMM | None = None) -> dict:
    """Relative entropy (Eq. 7), total correlation (Eq. 10) and component count of the aggregated posterior.

    Returns ``{"re": {mean, min, max, per_trace}, "tc": {...}, "components": float}``, cached under kind
    ``"jamroz-latent"`` so the pages that need it share one DP-GMM run per VAE. ``model``: the DP-GMM of
    :func:`fit_latents` with this ``seed`` when it is already fitted (it is then not fitted again).
    """
    cache = ArtifactCache() if cache is None else cache
    key = _latent_key(run, v, seed)

    def compute():
        fitted = model if model is not None else fit_latents(run, v, seed)[0]
        out = {"components": float(fitted.n_components_.double().mean())}
        for name, fn in (("re", relative_entropy), ("tc", total_correlation)):
            est = fn(fitted, n_samples=v.n_samples, seed=seed)
            out[name] = {"mean": est.mean, "min": est.min, "max": est.max, "per_trace": est.per_trace}
        return out

    # get_or_compute holds the key's lock: two pages needing the same DP-GMM run compute it once
    return cache.get_or_compute("jamroz-latent", key, compute)


def draw_codes(source: str, n: int, seed: int = 0, model: DPGMM | None = None, latent_dim: int | None = None, *,
               variance: float = 1.0, trace_index: int = -1) -> torch.Tensor:
    """``n`` latent codes (float32) from one of four sources.

    - ``"prior"``: N(0, variance·I) in ``latent_dim`` dimensions;
    - ``"joint"``: the DP-GMM posterior predictive p(z*) (Eq. 6, averaged over kept sweeps);
    - ``"trace"``: p(z* | c) given one kept sweep (``trace_index``, default the last), the sampler of Section 5.2;
    - ``"factorial"``: the product of the predictive's marginals p_ind(z*) (Eq. 8), every dimension drawn alone.
    """
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if source == "prior":
            if not (isinstance(latent_dim, int) and latent_dim > 0):
                raise ValueError(f"latent_dim: expected a positive integer for prior codes, got {latent_dim!r}")
            return torch.randn(n, latent_dim) * math.sqrt(variance)
        if model is None:
            raise ValueError(f"model: a fitted DPGMM is needed to draw {source!r} codes")
        if source == "joint":
            return model.sample(n, seed=seed).float()
        if source == "trace":
            return model.predictive(trace_index=trace_index, device="cpu").sample((n,)).float()
        if source == "factorial":
            dist = model.predictive(device="cpu")
            comp = dist.component_distribution
            marginals = student_t_marginal_mixture(dist.mixture_distribution.probs, comp.df, comp.loc,
                                                   comp.marginal_scale)
            return marginals.sample((n,)).float()
    raise ValueError(f"source: expected 'prior', 'joint', 'trace' or 'factorial', got {source!r}")


@torch.no_grad()
def decode(model, z: torch.Tensor) -> torch.Tensor:
    """Images decoded from codes z (n, d): the decoder's mean, clipped to [0, 1] (shape (n, C, H, W))."""
    dev = next(model.parameters()).device
    out = model.decode(z.float().to(dev))
    out = torch.sigmoid(out) if model.likelihood == "bernoulli" else out
    return out.clamp(0, 1).cpu()


@torch.no_grad()
def classifier_outputs(run: TrainedRun, images: torch.Tensor, batch_size: int = 500
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (the last block's globally average-pooled output) and output probabilities of a classifier, from
    one pass over ``images`` (floats in [0, 1] or uint8, normalised here as the classifier was trained): softmax
    class probabilities (n, classes), or for a multi-label classifier each attribute's sigmoid (n, attributes)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected a tensor of shape (n, C, H, W), got {got}")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    x = normalise(x, run.config.dataset)
    last = f"block.{len(run.config.model.layout)}"
    dev = next(run.model.parameters()).device
    out = capture(run.model, x, layers=[last, "output"], reduce="gap", batch_size=batch_size, device=dev)
    logits = out["output"].double()
    return out[last].double(), torch.sigmoid(logits) if run.config.multi_label else torch.softmax(logits, 1)


def sample_quality(classifier: TrainedRun, images: torch.Tensor, reference: torch.Tensor) -> dict:
    """Fréchet distance of ``images`` to ``reference`` on the classifier's features, and the classifier's
    confidence on ``images``: the mean top-class probability, or for a multi-label classifier the mean over images
    and attributes of max(p, 1 − p), how sure it is of each attribute either way (½ is a coin toss, 1 certainty).

    ``reference`` is either real images (n, C, H, W) or their features from :func:`classifier_outputs` (n, F).
    """
    fa, pa = classifier_outputs(classifier, images)
    fr = reference if torch.as_tensor(reference).ndim == 2 else classifier_outputs(classifier, reference)[0]
    sure = torch.maximum(pa, 1.0 - pa).mean(1) if classifier.config.multi_label else pa.max(1).values
    return {"fd": frechet_distance(fa, fr), "confidence": float(sure.mean())}


def frechet_setup(training: CNNTraining, width: int, n_real: int, seed: int = 0, cache: ArtifactCache | None = None):
    """The classifier of the Fréchet distance and its reference: ``(classifier, reference, floor)``.

    The classifier is the true-label CNN of :func:`~.jamroz2020.cnn_config` with these sizes and ``seed`` (at
    ``quick`` the first net of the memorisation page, shared through the cache); ``reference`` holds its features
    of ``n_real`` real test images (at most the split); ``floor`` is :func:`sample_quality` of as many real training
    images against them. Returns ``(None, None, None)`` when the dataset has neither labels nor attributes.
    """
    if not has_labels(training.dataset):
        return None, None, None
    classifier = train_runs([cnn_config(training, width, seed=seed)], cache=cache)[0]
    n = min(n_real, len(_data.load(training.dataset, split="test")), train_size(training.dataset))
    reference = classifier_outputs(classifier, real_images(training.dataset, n, seed=seed + 1))[0]
    floor = sample_quality(classifier, real_images(training.dataset, n, seed=seed, split="train"), reference)
    return classifier, reference, floor


# -- the sections of the pages -----------------------------------------------------------------------------------------
def vae_runs(v: VAESweep, seed: int = 0, n_jobs: int = 1) -> dict:
    """Pages 03-05, setup: ``{(objective name, β, seed): run}`` for both :data:`OBJECTIVES` at every β, ``n_seeds``
    VAEs each (seeds ``seed``, ``seed + 1``, ...)."""
    keys = [(name, beta, s) for name in OBJECTIVES for beta in v.betas for s in range(seed, seed + v.n_seeds)]
    configs = [vae_config(v, OBJECTIVES[name], beta, seed=s) for name, beta, s in keys]
    return dict(zip(keys, train_runs(configs, n_jobs=n_jobs)))


def latent_table(runs: dict, v: VAESweep, measure: str = "re", seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Pages 03-04, experiment: ``measure`` ("re": relative entropy, "tc": total correlation) of every VAE's
    :func:`latent_information`, one row per (objective, β, seed) with its mean, min, max over kept sweeps and the
    mean component count (the DP-GMM of each VAE's codes is seeded with the VAE's seed). With ``n_jobs > 1`` the
    DP-GMMs not yet in the cache are fitted side by side over that many processes."""
    fitted = {}
    if n_jobs > 1:
        cache = ArtifactCache()
        todo = {k: run for k, run in runs.items() if not cache.exists("jamroz-latent", _latent_key(run, v, k[2]))}
        fitted = {k: model for k, (model, _) in fit_sweep_latents(todo, v, n_jobs).items()}
    info = {k: latent_information(run, v, seed=k[2], model=fitted.get(k)) for k, run in runs.items()}
    return pd.DataFrame([{"objective": name, "beta": beta, "seed": s,
                          **{m: info[name, beta, s][measure][m] for m in ("mean", "min", "max")},
                          "components": info[name, beta, s]["components"]} for name, beta, s in runs])


def over_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Per (objective, β): the mean over seeds of the mean over kept sweeps, and the smallest minimum and largest
    maximum over seeds and sweeps (the band the figures draw)."""
    return (table.groupby(["objective", "beta"]).agg(mean=("mean", "mean"), min=("min", "min"), max=("max", "max"),
                                                      components=("components", "mean")).reset_index())


@dataclass(frozen=True)
class QualitySetup:
    """The VAEs of the sweep and the Fréchet classifier (None without labels or attributes) with its reference
    features and the floor, real training images against the reference."""

    runs: dict
    classifier: TrainedRun | None
    reference: torch.Tensor | None
    floor: dict | None

    @property
    def labelled(self) -> bool:
        return self.classifier is not None

    def summary(self) -> str:
        """The classifier's accuracy and the floor, as one line."""
        if not self.labelled:
            return "no labels or attributes: no Fréchet classifier"
        kind = "mean attribute" if self.classifier.config.multi_label else "test"
        return (f"classifier {kind} accuracy {accuracy(self.classifier, 'test'):.3f}; real training images vs test "
                f"images: Fréchet distance {self.floor['fd']:.3f}, confidence {self.floor['confidence']:.3f}")


def quality_setup(v: VAESweep, q: Quality, seed: int = 0, n_jobs: int = 1) -> QualitySetup:
    """Pages 04-05, setup: the VAEs (:func:`vae_runs`) and the Fréchet classifier (:func:`frechet_setup`)."""
    runs = vae_runs(v, seed, n_jobs)
    training = CNNTraining(v.dataset, q.classifier_depth, q.classifier_n_train, q.classifier_epochs,
                           q.classifier_batch_size, 0.01)
    return QualitySetup(runs, *frechet_setup(training, q.classifier_width, q.n_quality, seed=seed))


def joint_vs_factorial(setup: QualitySetup, v: VAESweep, q: Quality, seed: int = 0, n_jobs: int = 1
                       ) -> tuple[dict, pd.DataFrame]:
    """Page 04, Fig. 3: for the β-VAE at the smallest and largest β and the MMD-VAE at the largest, images decoded
    from codes of the joint predictive p(z*) and of the product of its marginals p_ind(z*), for every seed. Returns
    ``{label: first n_show images}`` (the first seed) and (when labelled) their :func:`sample_quality`, one row per
    (objective, β, seed, codes). Their DP-GMMs are fitted over ``n_jobs`` processes (:func:`fit_sweep_latents`)."""
    lo, hi = min(v.betas), max(v.betas)
    shown = {k: run for k, run in setup.runs.items() if k[:2] in [("β-VAE", lo), ("β-VAE", hi), ("MMD-VAE", hi)]}
    fitted = fit_sweep_latents(shown, v, n_jobs)
    rows, quality = {}, []
    for (name, beta, s), run in shown.items():
        dp, _ = fitted[name, beta, s]
        for source, label in (("joint", "p(z*)"), ("factorial", "p_ind(z*)")):
            images = decode(run.model, draw_codes(source, q.n_quality, seed=s, model=dp))
            if s == seed:
                rows[f"{name}, β = {beta:g}: codes from {label}"] = images[:q.n_show]
            if setup.labelled:
                quality.append({"objective": name, "beta": beta, "seed": s, "codes": label,
                                **sample_quality(setup.classifier, images, setup.reference)})
    return rows, pd.DataFrame(quality)


def prior_vs_dpgmm(setup: QualitySetup, v: VAESweep, q: Quality, seed: int = 0, n_jobs: int = 1
                   ) -> tuple[dict, pd.DataFrame]:
    """Page 05, Fig. 4: for every VAE, images decoded from prior codes and from p(z* | c_t) of every kept sweep t.
    Returns ``{label: first n_show images}`` (the first seed's prior and last sweep, at the smallest and largest β)
    and (when labelled) their :func:`sample_quality`, one row per (objective, β, seed, codes, sweep; -1 for the
    prior). The DP-GMMs are fitted over ``n_jobs`` processes (:func:`fit_sweep_latents`)."""
    fitted = fit_sweep_latents(setup.runs, v, n_jobs)
    rows, quality = {}, []
    for (name, beta, s), run in setup.runs.items():
        dp, _ = fitted[name, beta, s]
        draws = [("prior", "prior", -1)] + [("trace", "DP-GMM p(z*|c)", t) for t in range(dp.n_traces_)]
        for source, label, t in draws:
            z = draw_codes(source, q.n_quality, seed=s, model=dp, latent_dim=v.latent_dim,
                           variance=prior_variance(run.config), trace_index=t)
            images = decode(run.model, z)
            if s == seed and beta in (min(v.betas), max(v.betas)) and t in (-1, dp.n_traces_ - 1):
                rows[f"{name}, β = {beta:g}: codes from the {label}"] = images[:q.n_show]
            if setup.labelled:
                quality.append({"objective": name, "beta": beta, "seed": s, "codes": label, "sweep": t,
                                **sample_quality(setup.classifier, images, setup.reference)})
    return rows, pd.DataFrame(quality)
