"""Bonheme & Grześ (2023, "How good are VAEs at transfer learning?"): the sections of ``notebooks/bonheme2023``.

The VAEs are the shared set of :mod:`replab.experiments.bonheme2022` trained on the target and on the source
dataset; transfer retrains some of their layers on the target (:func:`replab.transfer.transfer`), and the pages
compare layers (:mod:`replab.layer_similarity`), reconstructions and classifiers of the factors on latent means
(:func:`replab.probes.factor_classification`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from .. import profiles
from ..layer_similarity import diagonal, model_similarity, part_means, representations, similarity  # noqa: F401
from ..models import encode
from ..objectives import reconstruction_loss
from ..probes import FACTOR_CLASSIFIERS, factor_classification
from ..similarity import permutation_test, synthetic
from ..transfer import ImageSet, TransferJob, decoder_layers, load_images, paper_datasets, retrain_schedule, \
    transfer, transfers
from .bonheme2022 import Member, Models, held_out_images, train_members
from .bonheme_retraining import example_losses


@profiles.experiment("bonheme2023.metric-sanity", pages=("bonheme2023/01-metric-sanity",))
@dataclass(frozen=True)
class MetricSanity:
    """§2.3, Fig. 1: CKA and Procrustes on synthetic matrices."""

    n_features: int = profiles.size("features per matrix (the paper: 50)")
    example_counts: tuple[int, ...] = profiles.size("numbers of examples on the x-axis of Fig. 1")
    n_seeds: int = profiles.size("independent draws per point (the paper: one)")
    ding_examples: int = profiles.size("examples of the small-components test")
    ding_features: int = profiles.size("features (principal components) of the small-components test")


def permutation_tests(n_examples: int, n_features: int, n_permutations: int, seed: int = 0) -> pd.DataFrame:
    """A permutation test over examples of CKA and of Procrustes, for a pair sharing 80% of its features and an
    unrelated pair (``shared``, ``metric``, ``similarity``, ``null_mean``, ``p_value``)."""
    rows = []
    for shared in (0.8, 0.0):
        a, b = synthetic.shared_feature_pair(n_examples, n_features, shared, seed=seed)
        for metric, fn in (("CKA", "linear_cka"), ("Procrustes", "procrustes")):
            res = permutation_test(a, b, metric=fn, n_perm=n_permutations, seed=seed)
            rows.append(dict(shared=shared, metric=metric, similarity=res.statistic, null_mean=res.null.mean(),
                             p_value=res.p_value))
    return pd.DataFrame(rows)


def first_below(series: pd.Series, level: float):
    """The first index whose value is below ``level`` (None if none is)."""
    return next((n for n, v in series.items() if v < level), None)


def sanity_measures(fig1: pd.DataFrame, ding: pd.DataFrame, tests: pd.DataFrame) -> dict:
    """The numbers recorded with the metric-sanity claims (means over draws): both metrics at the most examples
    for 80% and 50% shared features; the unrelated pair at the fewest and the most examples and where each metric
    first falls below 0.2; the small-components test; the permutation tests' p-values."""
    means = fig1.groupby(["shared", "metric", "n_examples"])["similarity"].mean()
    n_max = int(fig1["n_examples"].max())
    cka0, proc0 = means[(0.0, "CKA")], means[(0.0, "Procrustes")]
    d90 = ding[ding["removed"] == 0.9]
    p = tests.set_index(["shared", "metric"])["p_value"]
    return {"agree": {"n_examples": n_max, **{f"{m.lower()}_{round(100 * f)}": float(means[(f, m, n_max)])
                                               for f in (0.8, 0.5) for m in ("CKA", "Procrustes")}},
            "unrelated": {"procrustes_at_fewest": float(proc0.iloc[0]), "cka_at_fewest": float(cka0.iloc[0]),
                          "fewest": int(proc0.index[0]), "procrustes_at_most": float(proc0.iloc[-1]),
                          "cka_at_most": float(cka0.iloc[-1]), "cka_below_0_2_at": first_below(cka0, 0.2),
                          "procrustes_below_0_2_at": first_below(proc0, 0.2)},
            "small": {**d90.groupby("metric")["similarity"].mean().rename(str.lower).to_dict(),
                      "variance_kept": float(d90["variance_kept"].mean())},
            "permutation": {f"p_{'unrelated' if f == 0 else '80'}_{m.lower()}": float(p[(f, m)])
                            for f in (0.0, 0.8) for m in ("CKA", "Procrustes")}}


# -- transfer between datasets ---------------------------------------------------------------------------------
def _target_train(M: Models, target: str) -> ImageSet:
    return load_images(target, M.n_train, 0, M.image_size, "train")


@profiles.experiment("bonheme2023.generic-encoders", pages=("bonheme2023/02-generic-encoders",))
@dataclass(frozen=True)
class GenericEncoders:
    """§4.2, Fig. 5: VAEs trained on different datasets, compared on the target."""

    n_examples: int = profiles.size("target test images the similarities are computed on", unit="images")
    transfer_steps: int = profiles.size("steps retraining the mean and variance layers on the target",
                                        unit="steps")


def generic_models(M: Models, S: GenericEncoders, datasets: Sequence[str], retrained: Sequence[str],
                   seeds: Sequence[int]) -> list[tuple[dict, torch.Tensor]]:
    """For each of ``seeds``, ``({name: model}, x)``: two β-VAEs trained on the target (the seed and the next
    seed of ``M.seeds``), one on the source, and that one with ``retrained`` retrained on the target; ``x`` the
    target test images. Every seed's VAEs are asked for in one call and every transfer in another, so that where
    the engine stacks they train as stacked models."""
    target, source = datasets
    plans = []
    for seed in (int(s) for s in seeds):
        other = int(M.seeds[(list(M.seeds).index(seed) + 1) % len(M.seeds)])
        plans.append((Member("beta_vae", M.primary("beta_vae"), seed, source),
                      [Member("beta_vae", M.primary("beta_vae"), s, target) for s in (seed, other)]))
    runs = train_members(M, list(dict.fromkeys(m for on_source, on_target in plans for m in [on_source, *on_target])))
    x = held_out_images(M, target, S.n_examples)
    target_train = _target_train(M, target)
    moved = transfers([TransferJob(runs[on_source], target_train, tuple(retrained), S.transfer_steps)
                       for on_source, _ in plans])
    return [({"target": runs[on_target[0]].model, "target, other seed": runs[on_target[1]].model,
              "source": runs[on_source].model, "source, latent retrained": transferred}, x)
            for (on_source, on_target), transferred in zip(plans, moved)]


def against_first(models: dict, x: torch.Tensor, n_procrustes: int) -> dict:
    """Layer × layer tables of the first model against each of the others, ``{name: {metric: table}}``."""
    reps = {name: representations(model, x) for name, model in models.items()}
    first = next(iter(reps))
    return {name: similarity(reps[first], r, n_procrustes=n_procrustes) for name, r in reps.items() if name != first}


def generic_tables(M: Models, S: GenericEncoders, datasets: Sequence[str], retrained: Sequence[str]
                   ) -> tuple[dict, pd.DataFrame]:
    """:func:`against_first` of :func:`generic_models` for every seed of ``M.seeds``: the first seed's tables
    and every seed's diagonal means per part (rows ``(seed, name)``)."""
    shown, parts = None, {}
    for seed, models in zip(M.seeds, generic_models(M, S, datasets, retrained, M.seeds)):
        tables = against_first(*models, M.n_procrustes)
        shown = shown or tables
        parts.update({(int(seed), name): part_means(t["min"]) for name, t in tables.items()})
    return shown, pd.DataFrame(parts).T.rename_axis(["seed", "model"])


@profiles.experiment("bonheme2023.retraining-the-decoder", pages=("bonheme2023/03-retraining-the-decoder",))
@dataclass(frozen=True)
class RetrainingTheDecoder:
    """§4.2, Figs. 6, 9: retraining 0…all decoder layers of a source VAE on the target."""

    n_examples: int = profiles.size("target test images the reconstruction loss is measured on", unit="images")
    transfer_steps: int = profiles.size("steps of retraining per transfer run", unit="steps")
    n_retrained: tuple[int, ...] = profiles.size("numbers of decoder layers retrained")


@dataclass(frozen=True)
class Retraining:
    """The source VAE, the VAE trained on the target, the target's training and test images (``x``)."""
    source: object
    reference: object
    target_train: ImageSet
    x: torch.Tensor

    @property
    def layers(self) -> list[str]:
        return decoder_layers(self.source.model)


def retraining_setup(M: Models, S: RetrainingTheDecoder, datasets: Sequence[str], seed: int | None = None
                     ) -> Retraining:
    """A β-VAE trained on the source and one on the target (``seed``, default the first), the target's images."""
    target, source = datasets
    seed = int(M.seeds[0] if seed is None else seed)
    src, ref = (Member("beta_vae", M.primary("beta_vae"), seed, d) for d in (source, target))
    runs = train_members(M, [src, ref])
    return Retraining(runs[src], runs[ref], _target_train(M, target), held_out_images(M, target, S.n_examples))


SCHEDULES = {"innermost": ("innermost", []), "outermost": ("outermost", []),
             "innermost + mean/variance": ("innermost", ["mean", "variance"])}


@dataclass(frozen=True)
class Sweep:
    """One row per (order, k) of retraining (``results``), the retrained models and the target VAE's loss."""
    results: pd.DataFrame
    models: dict
    reference: float


def retraining_sweeps(setups: Sequence[Retraining], S: RetrainingTheDecoder) -> list[Sweep]:
    """For each setup (a seed): the source VAE with k of its decoder layers re-initialised and retrained on the
    target, for each k of ``S.n_retrained`` and each order (innermost or outermost first; innermost with the mean
    and variance too), and the target reconstruction loss of each (``reconstruction_loss``, and per test image in
    ``example_losses``, which the claims' intervals resample). The transfers of all setups are asked for at once,
    so that one schedule's runs for several seeds train as one stacked model where the engine stacks."""
    plan = [(setup, order, int(k), latent + retrain_schedule(setup.source.model, int(k), direction))
            for setup in setups for order, (direction, latent) in SCHEDULES.items() for k in S.n_retrained]
    models = transfers([TransferJob(setup.source, setup.target_train, layers, S.transfer_steps)
                        for setup, _, _, layers in plan])
    sweeps = []
    for setup in setups:
        rows, kept = [], {}
        for (owner, order, k, layers), model in zip(plan, models):
            if owner is not setup:
                continue
            kept[order, k] = model
            rows.append({"order": order, "n_retrained": k, "layers": ", ".join(layers) or "—",
                         "reconstruction_loss": reconstruction_loss(model, setup.x),
                         "example_losses": example_losses(model, setup.x)})
        sweeps.append(Sweep(pd.DataFrame(rows), kept, reconstruction_loss(setup.reference.model, setup.x)))
    return sweeps


def shown_rows(all_seeds: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The sweep rows of one seed as the page shows them (without the per-example losses)."""
    return all_seeds[all_seeds["seed"] == seed].drop(columns="example_losses")


def seed_sweeps(M: Models, S: RetrainingTheDecoder, datasets: Sequence[str]) -> tuple[Retraining, Sweep, pd.DataFrame]:
    """:func:`retraining_sweeps` with :func:`decoder_similarity` for every seed of ``M.seeds``: the first seed's
    setup and sweep (the figures show them) and every seed's rows (a ``seed`` column, the target VAE's loss in
    ``reference``)."""
    shown, frames = None, []
    setups = [retraining_setup(M, S, datasets, seed) for seed in M.seeds]
    for seed, setup, sweep in zip(M.seeds, setups, retraining_sweeps(setups, S)):
        frames.append(sweep.results.assign(seed=int(seed), reference=sweep.reference,
                                           decoder_similarity_to_target_vae=decoder_similarity(sweep, setup,
                                                                                               M.n_procrustes)))
        shown = shown or (setup, sweep)
    return shown[0], shown[1], pd.concat(frames, ignore_index=True)


def public_script_check(setup: Retraining, steps: int) -> pd.Series:
    """Target reconstruction loss of the source, of its decoder fine-tuned (not reset) here, and of the public
    script's fine-tuning, which freezes every layer when none is reset."""
    kw = dict(steps=steps, reset=False)
    finetuned = transfer(setup.source, setup.target_train, setup.layers, **kw)
    legacy = transfer(setup.source, setup.target_train, setup.layers, legacy_freeze_when_not_reset=True, **kw)
    return pd.Series({"source model, nothing retrained": reconstruction_loss(setup.source.model, setup.x),
                      "fine-tuned decoder (this library)": reconstruction_loss(finetuned, setup.x),
                      "fine-tuned decoder (public script: all frozen)": reconstruction_loss(legacy, setup.x)},
                     name="target reconstruction loss")


def decoder_similarity(sweep: Sweep, setup: Retraining, n_procrustes: int) -> list[float]:
    """Per row of the sweep, the mean diagonal min(CKA, Procrustes) of the decoder against the target VAE's."""
    return [float(diagonal(model_similarity(sweep.models[r["order"], r["n_retrained"]], setup.reference.model,
                                            setup.x, setup.layers, n_procrustes=n_procrustes)["min"]).mean())
            for r in sweep.results.to_dict("records")]


@profiles.experiment("bonheme2023.shared-variables", pages=("bonheme2023/04-shared-variables",))
@dataclass(frozen=True)
class SharedVariables:
    """§4.3, Figs. 7, 8, Table 1, App. A: target examples through a source VAE; classifiers on latent means."""

    n_classify_train: int = profiles.size("target examples the classifiers are fitted on", unit="images")
    n_classify_test: int = profiles.size("target examples they are scored on", unit="images")
    gb_estimators: int = profiles.size("trees of the gradient boosting classifier (the public code: 100)")
    lr_cs: int = profiles.size("regularisation values tried by LogisticRegressionCV")
    n_show: int = profiles.size("examples shown in the reconstruction figures", unit="images")
    exception_datasets: tuple[str, ...] = profiles.size("(target, source) of Table 1's exception, Cars3D and "
                                                        "CelebA, at `medium` and `full` (none: not run)",
                                                        dataset="pair")


@dataclass(frozen=True)
class Domains:
    """One β-VAE per dataset (``models``), each dataset's training and test images."""
    datasets: list
    models: dict
    train_sets: dict
    test_sets: dict

    def other(self, dataset: str) -> str:
        return next(d for d in self.datasets if d != dataset)


def domain_models(M: Models, S: SharedVariables, datasets: Sequence[str], seed: int | None = None) -> Domains:
    """The primary β-VAE of ``seed`` (default: the first seed) trained on each dataset, and each dataset's
    images."""
    seed = int(M.seeds[0] if seed is None else seed)
    vaes = {d: Member("beta_vae", M.primary("beta_vae"), seed, d) for d in datasets}
    runs = train_members(M, list(vaes.values()))
    return Domains(list(datasets), {d: runs[m].model for d, m in vaes.items()},
                   {d: _target_train(M, d) for d in datasets},
                   {d: load_images(d, S.n_classify_test, seed=1, image_size=M.image_size, split="test")
                    for d in datasets})


def seed_accuracy(M: Models, S: SharedVariables, datasets: Sequence[str]) -> tuple[Domains, pd.DataFrame]:
    """:func:`cross_domain_accuracy` for the β-VAEs of every seed of ``M.seeds`` (a ``seed`` column), and the
    first seed's :class:`Domains` (the figures show it). Gradient boosting, which the claims read, runs for every
    seed; the logistic regression, shown for comparison, for the first seed only."""
    frames, first = [], None
    for seed in M.seeds:
        domains = domain_models(M, S, datasets, seed)
        kinds = FACTOR_CLASSIFIERS if first is None else ("gradient_boosting",)
        first = first or domains
        frames.append(cross_domain_accuracy(domains, S, classifiers=kinds).assign(seed=int(seed)))
    return first, pd.concat(frames, ignore_index=True)


def cross_domain_accuracy(domains: Domains, S: SharedVariables, targets: Sequence[str] | None = None,
                          classifiers: Sequence[str] = FACTOR_CLASSIFIERS) -> pd.DataFrame:
    """Per (target, source): ``classifiers`` of each target factor on the source VAE's latent means of target
    images (:func:`replab.probes.factor_classification`; fitted on ``n_classify_train`` training images drawn at
    random), with ``target`` and ``source`` columns; every dataset is a target unless ``targets`` names some."""
    rows = []
    for target in targets or domains.datasets:
        tr, te = domains.train_sets[target], domains.test_sets[target]
        # a seeded random draw: the stored order follows the factors (dSprites' first half has no heart)
        pick = torch.randperm(len(tr), generator=torch.Generator().manual_seed(0))[:S.n_classify_train].sort().values
        for source in domains.datasets:
            model = domains.models[source]
            table = factor_classification(encode(model, tr.images[pick].float() / 255.0)[0].numpy(),
                                          tr.factor_classes[pick].numpy(),
                                          encode(model, te.float())[0].numpy(), te.factor_classes.numpy(),
                                          tr.factor_names, classifiers=classifiers, gb_estimators=S.gb_estimators,
                                          lr_cs=S.lr_cs)
            rows.append(table.assign(target=target, source=source))
    return pd.concat(rows, ignore_index=True)


def exception_accuracy(M: Models, S: SharedVariables) -> pd.DataFrame | None:
    """Table 1's exception (``S.exception_datasets``, Cars3D ← CelebA): classifiers of the target's factors on
    both VAEs' latent means, every seed; None when no exception is named or its files are not here."""
    if not S.exception_datasets:
        return None
    target, source = S.exception_datasets
    here = paper_datasets([target], need_factors=True) + paper_datasets([source])
    if here != [target, source]:
        return None
    return pd.concat([cross_domain_accuracy(domain_models(M, S, here, seed), S, [target], ("gradient_boosting",))
                      .assign(seed=int(seed)) for seed in M.seeds], ignore_index=True)


def cross_reconstructions(domains: Domains, n_show: int) -> dict:
    """Per target: ``(source, examples, their reconstructions by the VAE trained on the other dataset)``."""
    shown = {t: domains.test_sets[t].float()[:n_show] for t in domains.datasets}
    return {t: (domains.other(t), x, domains.models[domains.other(t)].reconstruct(x).detach())
            for t, x in shown.items()}


def mean_layer_similarity(domains: Domains) -> pd.DataFrame:
    """Per target, the similarity of the ``mean`` layers of the target's and the other dataset's VAE."""
    out = {}
    for target in domains.datasets:
        t = model_similarity(domains.models[target], domains.models[domains.other(target)],
                             domains.test_sets[target].float(), ["mean"])
        out[target] = {metric: float(t[metric].iat[0, 0]) for metric in ("linear_cka", "procrustes", "min")}
    return pd.DataFrame(out).T.rename_axis("target")
