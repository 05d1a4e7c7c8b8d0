"""Bonheme & Grześ (2022), Apps. G and H: a classifier with the VAE encoder's architecture and fully connected
VAEs, compared with the shared set of :mod:`replab.experiments.bonheme2022` (``notebooks/bonheme2022/03-objectives``)."""
from __future__ import annotations

from .. import models as _models
from ..geometry import active_units
from ..layer_similarity import diagonal, part_means, representations, similarity
from ..models import encode
from ..train import TrainedRun, train
from ..transfer import CHANNELS, load_images
from .bonheme2022 import OBJECTIVES, Member, Models, ModelSet, Objectives, _config, _training_data, objective_params, \
    snapshot_steps


def train_classifier(M: Models, steps: int, seed: int = 0, factor: str = "shape") -> TrainedRun:
    """A classifier with the VAE encoder's architecture (App. H) trained on one dSprites factor."""
    images, classes = _training_data(M, "dsprites")
    col = load_images("dsprites", M.n_train, 0, M.image_size).factor_names.index(factor)
    model = _models.DlibClassifierConfig(n_classes=int(classes[:, col].max()) + 1, image_size=M.image_size,
                                         widths=M.widths, hidden=M.hidden)
    return train(_config(M, model, "cross_entropy", steps, dataset="dsprites", seed=seed, label_column=col),
                 data=(images, classes))


def train_fc(M: Models, member: Member, steps: int, width: int) -> TrainedRun:
    """The fully connected disentanglement_lib VAE (App. G) for one member, on the same data."""
    fc = _models.FCConfig(input_shape=(CHANNELS.get(member.dataset, 1), M.image_size, M.image_size),
                          encoder_widths=(width, width), decoder_widths=(width,) * 3)
    return train(_config(M, fc, member.objective, steps, dataset=member.dataset, seed=member.seed,
                         objective_params=objective_params(M, member.objective, member.strength, member.dataset),
                         snapshot_steps=snapshot_steps(M) if steps == M.steps else ()),
                 data=_training_data(M, member.dataset))


def appendix_models(M: Models, S: Objectives, models: ModelSet) -> dict:
    """Apps. H and G, for every seed of ``M.seeds``: a shape classifier with the encoder's architecture against
    each objective's primary model of the same seed (encoder layers), and a fully connected β-VAE against a fully
    connected DIP-VAE-II of that seed. The tables and states shown are the first seed's; ``clf_by_seed``
    (seeds × objectives, encoder means) and ``fc_by_seed`` (seed -> part means, final KLs) feed the claims."""
    seeds = [int(s) for s in M.seeds]
    clf_by_seed, fc_by_seed, shown = [], {}, {}
    for seed in seeds:
        classifier = train_classifier(M, steps=S.classifier_steps, seed=seed)
        clf_reps = representations(classifier.model, models.x)
        layers = ["input"] + [n for n in clf_reps if n.startswith("encoder.")]
        primary = {o: next(m for m in models.primary[o] if m.seed == seed) for o in OBJECTIVES}
        vs = {o: similarity({k: models.reps[primary[o]][k] for k in layers}, {k: clf_reps[k] for k in layers},
                            n_procrustes=M.n_procrustes) for o in OBJECTIVES}
        clf_by_seed.append([float(diagonal(t["min"]).drop("input").mean()) for t in vs.values()])
        fc_members = [primary["beta_vae"], primary["dip_vae_ii"]]
        fc_runs = {m: train_fc(M, m, S.fc_steps, S.fc_width) for m in fc_members}
        fc_tables = similarity(*(representations(fc_runs[m].model, models.x) for m in fc_members),
                               n_procrustes=M.n_procrustes)
        state = {m.label: {"final KL": round(float(fc_runs[m].metrics["kl"].iloc[-1]), 2),
                           "active units": active_units(encode(fc_runs[m].model, models.x)[0], unbiased=True)}
                 for m in fc_members}
        fc_by_seed[seed] = {"parts": part_means(fc_tables["min"]), "state": state}
        tail = classifier.metrics["accuracy"].tail(max(1, len(classifier.metrics) // 10))
        shown = shown or {"vs_classifier": vs, "fc_tables": fc_tables, "clf_accuracy": float(tail.mean()),
                          "clf_encoder": dict(zip(OBJECTIVES, clf_by_seed[0])),
                          "fc_parts": fc_by_seed[seed]["parts"], "fc_state": state}
    return {**shown, "clf_by_seed": clf_by_seed, "fc_by_seed": fc_by_seed}
