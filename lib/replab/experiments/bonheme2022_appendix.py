"""Bonheme & Grześ (2022), Apps. G and H: a classifier with the VAE encoder's architecture and fully connected
VAEs, compared with the shared set of :mod:`replab.experiments.bonheme2022` (``notebooks/bonheme2022/03-objectives``)."""
from __future__ import annotations

from typing import Sequence

from .. import models as _models
from ..geometry import active_units
from ..layer_similarity import diagonal, part_means, representations, similarity
from ..models import encode
from ..train import TrainConfig, TrainedRun
from ..train.groups import train_many
from ..transfer import CHANNELS, load_images
from .bonheme2022 import OBJECTIVES, Member, Models, ModelSet, Objectives, _config, _training_data, objective_params, \
    snapshot_steps


def classifier_config(M: Models, steps: int, seed: int = 0, factor: str = "shape") -> TrainConfig:
    """A classifier with the VAE encoder's architecture (App. H) learning one dSprites factor."""
    _, classes = _training_data(M, "dsprites")
    col = load_images("dsprites", M.n_train, 0, M.image_size).factor_names.index(factor)
    model = _models.DlibClassifierConfig(n_classes=int(classes[:, col].max()) + 1, image_size=M.image_size,
                                         widths=M.widths, hidden=M.hidden)
    return _config(M, model, "cross_entropy", steps, dataset="dsprites", seed=seed, label_column=col)


def train_classifiers(M: Models, steps: int, seeds: Sequence[int], factor: str = "shape") -> list[TrainedRun]:
    """One classifier per seed (:func:`classifier_config`), stacked where the engine stacks (on a GPU)."""
    configs = [classifier_config(M, steps, seed, factor) for seed in seeds]
    return train_many(configs, data=_training_data(M, "dsprites"))


def train_classifier(M: Models, steps: int, seed: int = 0, factor: str = "shape") -> TrainedRun:
    return train_classifiers(M, steps, [seed], factor)[0]


def fc_config(M: Models, member: Member, steps: int, width: int) -> TrainConfig:
    """The fully connected disentanglement_lib VAE (App. G) of ``member``."""
    fc = _models.FCConfig(input_shape=(CHANNELS.get(member.dataset, 1), M.image_size, M.image_size),
                          encoder_widths=(width, width), decoder_widths=(width,) * 3)
    return _config(M, fc, member.objective, steps, dataset=member.dataset, seed=member.seed,
                   objective_params=objective_params(M, member.objective, member.strength, member.dataset),
                   snapshot_steps=snapshot_steps(M) if steps == M.steps else ())


def train_fcs(M: Models, members: Sequence[Member], steps: int, width: int) -> list[TrainedRun]:
    """The fully connected VAEs of ``members`` (all of one dataset), on the same data as the conv VAEs; their
    objectives read one posterior sample, so on a GPU they stack into one model."""
    if len({m.dataset for m in members}) > 1:
        raise ValueError(f"members: one dataset expected, got {sorted({m.dataset for m in members})}")
    return train_many([fc_config(M, m, steps, width) for m in members], data=_training_data(M, members[0].dataset))


def train_fc(M: Models, member: Member, steps: int, width: int) -> TrainedRun:
    return train_fcs(M, [member], steps, width)[0]


def appendix_models(M: Models, S: Objectives, models: ModelSet) -> dict:
    """Apps. H and G, for every seed of ``M.seeds``: a shape classifier with the encoder's architecture against
    each objective's primary model of the same seed (encoder layers), and a fully connected β-VAE against a fully
    connected DIP-VAE-II of that seed. The tables and states shown are the first seed's; ``clf_by_seed``
    (seeds × objectives, encoder means) and ``fc_by_seed`` (seed -> part means, final KLs) feed the claims."""
    seeds = [int(s) for s in M.seeds]
    clf_by_seed, fc_by_seed, shown = [], {}, {}
    primaries = {seed: {o: next(m for m in models.primary[o] if m.seed == seed) for o in OBJECTIVES} for seed in seeds}
    fc_members = {seed: [primaries[seed]["beta_vae"], primaries[seed]["dip_vae_ii"]] for seed in seeds}
    classifiers = dict(zip(seeds, train_classifiers(M, S.classifier_steps, seeds)))
    fc_all = train_fcs(M, [m for seed in seeds for m in fc_members[seed]], S.fc_steps, S.fc_width)
    fc_of = dict(zip((m for seed in seeds for m in fc_members[seed]), fc_all))
    for seed in seeds:
        classifier = classifiers[seed]
        clf_reps = representations(classifier.model, models.x)
        layers = ["input"] + [n for n in clf_reps if n.startswith("encoder.")]
        primary = primaries[seed]
        vs = {o: similarity({k: models.reps[primary[o]][k] for k in layers}, {k: clf_reps[k] for k in layers},
                            n_procrustes=M.n_procrustes) for o in OBJECTIVES}
        clf_by_seed.append([float(diagonal(t["min"]).drop("input").mean()) for t in vs.values()])
        fc_runs = {m: fc_of[m] for m in fc_members[seed]}
        fc_tables = similarity(*(representations(fc_runs[m].model, models.x) for m in fc_members[seed]),
                               n_procrustes=M.n_procrustes)
        state = {m.label: {"final KL": round(float(fc_runs[m].metrics["kl"].iloc[-1]), 2),
                           "active units": active_units(encode(fc_runs[m].model, models.x)[0], unbiased=True)}
                 for m in fc_members[seed]}
        fc_by_seed[seed] = {"parts": part_means(fc_tables["min"]), "state": state}
        tail = classifier.metrics["accuracy"].tail(max(1, len(classifier.metrics) // 10))
        shown = shown or {"vs_classifier": vs, "fc_tables": fc_tables, "clf_accuracy": float(tail.mean()),
                          "clf_encoder": dict(zip(OBJECTIVES, clf_by_seed[0])),
                          "fc_parts": fc_by_seed[seed]["parts"], "fc_state": state}
    return {**shown, "clf_by_seed": clf_by_seed, "fc_by_seed": fc_by_seed}
