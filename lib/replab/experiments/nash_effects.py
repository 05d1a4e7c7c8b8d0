"""The claims of the Nash et al. (2019) pages as effects with intervals (:mod:`replab.evidence`).

Every measure of the pages is an array (seeds, test images): per-image test NLLs of the inversion models, per-image
L1 distances in representation space, per-image pixel distances of samples. Each claim's effect is one number
computed from the means over both axes, and its 95% interval a paired percentile bootstrap that resamples seeds and
test images jointly (:func:`replab.evidence.effect_of` with ``axes=(0, 1)``), so that the measures of one image and
one seed stay paired across layers, nets and snapshots. With one seed only the images are resampled.
"""
from __future__ import annotations

import numpy as np
import torch

from ..evidence import Effect, effect_of
from ..inversion import LAYERS
from ..inversion.information import pixel_distance, slant_and_ink

__all__ = ["paired_effect", "inversion_effects", "sample_effects", "layer_effects", "table1_effects",
           "other_inversion_effects", "other_dataset_effects", "pooling_effects", "dynamics_effects",
           "sample_measures", "style_distances"]


def paired_effect(name: str, statistic, arrays, null: float = 0.0, side: str = "greater") -> Effect:
    """The effect ``statistic(*arrays)`` of per-image arrays (seeds, images), with a paired bootstrap over seeds
    and images (over images alone when there is one seed)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    axes, units = ((0, 1), ("seeds", "test images")) if arrays[0].shape[0] > 1 else ((1,), ("test images",))
    effect = effect_of(name, statistic, *arrays, null=null, side=side, axes=axes, unit_names=units)
    if len(axes) == 1:
        effect = Effect(**(effect.as_dict() | {"n": effect.n | {"seeds": 1}}))
    return effect


def _means(*arrays) -> list[float]:
    return [float(a.mean()) for a in arrays]


def _min_drop(*nll) -> float:
    """The smallest fall of the NCE from one layer to the next: min over l of mean(nll[l+1] − nll[l])."""
    m = _means(*nll)
    return min(b - a for a, b in zip(m[:-1], m[1:]))


def _first_drop_margin(*nll) -> float:
    """How much the CONV1 → CONV2 fall of the NCE exceeds the largest of the later falls."""
    m = _means(*nll)
    drops = [b - a for a, b in zip(m[:-1], m[1:])]
    return drops[0] - max(drops[1:])


def _min_bound(h_x, *nll) -> float:
    """The smallest information bound over the layers: min over l of mean(H*(x) − H*(x|h_l))."""
    hx = float(h_x.mean())
    return min(hx - m for m in _means(*nll))


def inversion_effects(nll: dict, h_x) -> dict:
    """Page 1's cross-entropy claims from the per-image test NLLs (seeds, images) of each layer's model and of
    the unconditional one: the smallest fall of the NCE between successive layers (Sec. 5.1, Fig. 5a: "decrease
    through successive layers"), the margin of the CONV1 → CONV2 fall over the others ("the biggest reduction"),
    and the smallest bound H*(x) − H*(x|h) over the layers (Eq. 9), all in nats, paired per image."""
    per_layer = [nll[layer] for layer in LAYERS]
    return {"falls": paired_effect("smallest NCE fall between successive layers (nats)", _min_drop, per_layer),
            "largest": paired_effect("CONV1→CONV2 fall minus the largest later fall (nats)", _first_drop_margin,
                                     per_layer),
            "bound": paired_effect("smallest H*(x) − H*(x|h) over the layers (nats)", _min_bound,
                                   [h_x, *per_layer])}


def sample_measures(images: torch.Tensor, samples: dict, train_images: torch.Tensor) -> dict:
    """Fig. 1's per-image measures from two samples per layer of each image (``samples[layer]``: uint8 (seeds,
    images, 2, C, H, W)): ``"variability"`` per layer, the pixel distance between the two samples; ``"to input"``
    per layer, the mean pixel distance of the samples to their input; ``"1NN pixels"``, the pixel distance of
    the training image nearest to the input (pixels are on the 0–1 scale; arrays (seeds, images))."""
    n_seeds = next(iter(samples.values())).shape[0]
    flat_test, flat_train = images.flatten(1).float(), train_images.flatten(1).float()
    nearest = torch.cdist(flat_test, flat_train, p=1).min(1).values / (flat_test.shape[1] * 255.0)
    out = {"variability": {}, "to input": {}, "1NN pixels": nearest.double().numpy()[None].repeat(n_seeds, 0)}
    for layer, s in samples.items():
        out["variability"][layer] = pixel_distance(s[:, :, 0], s[:, :, 1]).double().numpy()
        out["to input"][layer] = pixel_distance(s, images[None, :, None]).mean(-1).double().numpy()
    return out


def _depth_correlation(*per_layer) -> float:
    """Spearman's rank correlation between a layer's depth and its mean value (ties get their mean rank)."""
    from scipy.stats import spearmanr

    m = _means(*per_layer)
    if len(set(m)) == 1:
        return 0.0
    return float(spearmanr(np.arange(len(m)), m).statistic)


def _ratio(a, b) -> float:
    return float(a.mean() / b.mean())


def _class_or_all(labels: torch.Tensor, y) -> torch.Tensor:
    """The rows of class ``y``, or every row when no training image has that class (a tiny training set)."""
    mask = labels == y
    return mask if bool(mask.any()) else torch.ones_like(mask)


def style_distances(images: torch.Tensor, labels: torch.Tensor, samples: torch.Tensor, train_images: torch.Tensor,
                    train_labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """How far LOGITS samples are from their input in style: in the plane of :func:`slant_and_ink` (each feature
    divided by its spread over the training images), the mean distance from each input to its samples
    (``samples``: (seeds, images, S, C, H, W)), and the mean distance from it to the training images of its
    class, what samples that kept only the class would give (all training images if none has its class). Two
    arrays (seeds, images)."""
    train = slant_and_ink(train_images)
    scale = train.std(0).clamp_min(1e-8)
    train, test = train / scale, slant_and_ink(images) / scale
    drawn = (slant_and_ink(samples.flatten(0, 2)) / scale).view(*samples.shape[:3], 2)
    to_samples = (drawn - test[None, :, None]).norm(dim=-1).mean(-1)                        # (seeds, images)
    same_class = torch.stack([(train[_class_or_all(train_labels, y)] - t).norm(dim=-1).mean()
                              for t, y in zip(test, labels)])
    return to_samples.double().numpy(), same_class.double().numpy()[None].repeat(samples.shape[0], 0)


def sample_effects(measures: dict, style: tuple) -> dict:
    """Page 1's sample claims (Sec. 5.1, Fig. 1): the rank correlation between depth and the variability of two
    samples of one input; the CONV1 samples' pixel distance to their input as a fraction of the nearest
    training image's; and the LOGITS samples' style distance to their input as a fraction of that of a digit of
    the same class (:func:`style_distances`)."""
    var = [measures["variability"][layer] for layer in LAYERS]
    return {"variability": paired_effect("Spearman ρ between depth and sample variability", _depth_correlation,
                                         var),
            "conv1": paired_effect("CONV1 sample-to-input pixel distance / nearest training image's", _ratio,
                                   [measures["to input"]["CONV1"], measures["1NN pixels"]], null=1.0, side="less"),
            "style": paired_effect("LOGITS sample-to-input style distance / same-class digit's", _ratio,
                                   list(style), null=1.0, side="less")}


def layer_effects(t, inv, samples: dict) -> dict:
    """Every claim of page 1: :func:`inversion_effects` of the inversions ``inv`` (``"falls"``, ``"largest"``,
    ``"bound"``) and :func:`sample_effects` of the two samples per layer (``samples``, of the first test images
    of the classifiers ``t``: ``"variability"``, ``"conv1"``, ``"style"``)."""
    n = next(iter(samples.values())).shape[1]
    images, labels = t.data.test[:n], t.data.test_labels[:n]
    measures = sample_measures(images, samples, t.data.train)
    style = style_distances(images, labels, samples["LOGITS"], t.data.train, t.data.train_labels)
    return inversion_effects(inv.nll, inv.h_x) | sample_effects(measures, style)


def _max_ratio(*pairs) -> float:
    """The largest of mean(a)/mean(b) over the pairs (a, b) given one after the other."""
    return max(_ratio(a, b) for a, b in zip(pairs[::2], pairs[1::2]))


def table1_effects(check) -> dict:
    """Page 2's claims (Table 1, Sec. 5.1) from the per-image L1 distances (seeds, images) of a
    :class:`~replab.experiments.nash.RepresentationCheck`: the largest IM-NN/1NN
    ratio over CONV1, CONV2 and FC3 (all below 1 in the paper); the largest IM-S/1NN ratio over CONV1 and CONV2
    (below 1); and the IM-S/1NN ratio at FC3 (above 1: one sample is not closer there)."""
    def pairs(name, layers):
        return [a for layer in layers for a in (check.distances[layer][name], check.distances[layer]["1NN"])]

    return {"im-nn": paired_effect("largest IM-NN/1NN over CONV1, CONV2, FC3", _max_ratio,
                                   pairs("IM-NN", ("CONV1", "CONV2", "FC3")), null=1.0, side="less"),
            "im-s-conv": paired_effect("largest IM-S/1NN over CONV1, CONV2", _max_ratio,
                                       pairs("IM-S", ("CONV1", "CONV2")), null=1.0, side="less"),
            "im-s-fc3": paired_effect("IM-S/1NN at FC3", _ratio, pairs("IM-S", ("FC3",)), null=1.0)}


def _not_run(dataset: str, name: str, null: float, side: str = "greater") -> Effect:
    return Effect(name, 0.0, None, None, null=null, side=side,
                  why=f"needs {dataset} (the paper's other datasets run at the full profile)")


def other_inversion_effects(inversions: dict) -> dict:
    """Fig. 5a on SVHN and CIFAR-10 from ``{dataset: LayerInversions}`` (:func:`~replab.experiments.nash.
    other_inversions`): per dataset, :func:`inversion_effects`' smallest fall of the NCE between successive layers
    (``"<dataset>-falls"``) and the margin of the CONV1 → CONV2 fall over the later ones (``"<dataset>-largest"``).
    A dataset that did not run gives effects without an interval that say so."""
    out = {}
    for dataset in ("svhn", "cifar10"):
        if dataset in inversions:
            effects = inversion_effects(inversions[dataset].nll, inversions[dataset].h_x)
            out[f"{dataset}-falls"], out[f"{dataset}-largest"] = effects["falls"], effects["largest"]
        else:
            out[f"{dataset}-falls"] = _not_run(dataset, "smallest NCE fall between successive layers (nats)", 0.0)
            out[f"{dataset}-largest"] = _not_run(dataset, "CONV1→CONV2 fall minus the largest later fall (nats)",
                                                 0.0)
    return out


def other_dataset_effects(checks: dict) -> dict:
    """Table 1 on SVHN and CIFAR-10 from ``{dataset: RepresentationCheck}`` (:func:`~replab.experiments.nash.
    other_datasets`): on SVHN the largest IM-NN/1NN ratio over CONV1, CONV2 and FC3 (below 1 in the paper); on
    CIFAR-10 the same over CONV1 and CONV2 (below 1) and the IM-NN/1NN ratio at FC3, the table's one exception
    (above 1). A dataset that did not run gives an effect without an interval that says so."""
    def ratio(dataset, layers, name, combine, side):
        if dataset not in checks:
            return _not_run(dataset, name, 1.0, side)
        d = checks[dataset].distances
        return paired_effect(name, combine, [a for layer in layers for a in (d[layer]["IM-NN"], d[layer]["1NN"])],
                             null=1.0, side=side)

    return {"svhn": ratio("svhn", ("CONV1", "CONV2", "FC3"), "SVHN: largest IM-NN/1NN over CONV1, CONV2, FC3",
                          _max_ratio, "less"),
            "cifar10-conv": ratio("cifar10", ("CONV1", "CONV2"), "CIFAR-10: largest IM-NN/1NN over CONV1, CONV2",
                                  _max_ratio, "less"),
            "cifar10-fc3": ratio("cifar10", ("FC3",), "CIFAR-10: IM-NN/1NN at FC3", _ratio, "greater")}


def _position_margin(conv, pool, fc) -> float:
    return float(pool.mean() - max(conv.mean(), fc.mean()))


def _nce_order(conv, pool, fc) -> float:
    """The smaller of NCE(conv) − NCE(pool) and NCE(pool) − NCE(fc), from NLLs."""
    return float(min(pool.mean() - conv.mean(), fc.mean() - pool.mean()))


def pooling_effects(result) -> dict:
    """Page 3's claims (Sec. 5.2, Fig. 4) from a :class:`~replab.experiments.nash_nets.PoolingResult`: the
    global-pooling net's centroid error minus the larger of the two others' (pixels), and the smaller of the two
    NCE gaps of the paper's order conv > global pooling > fc (nats)."""
    errors, nll = result.errors, result.nll
    nets = ("convolutional", "global pooling", "fully connected")
    return {"position": paired_effect("centroid error: global pooling minus the larger other (px)",
                                      _position_margin, [errors[n] for n in nets]),
            "order": paired_effect("smaller NCE gap of conv > global pooling > fc (nats)", _nce_order,
                                   [nll[n] for n in nets])}


def dynamics_effects(dyn, snapshots, layers) -> dict:
    """Page 4's claims (Sec. 5.3, Fig. 5b) from the per-image NLLs of a
    :class:`~replab.experiments.nash_nets.Dynamics` by (classifier, snapshot, layer): the rise
    then fall, the largest over intermediate snapshots of the smaller of the NCE's rise from initialisation and
    its fall to the last snapshot (the smallest over the layers); and the overfitted classifier's NCE minus the
    regular one's at the last snapshot (the smallest over the layers), both in nats."""
    nll, snaps, layers = dyn.nll, sorted(snapshots), list(layers)
    first, last, middle = snaps[0], snaps[-1], snaps[1:-1]
    rise_keys = [("regular", s, layer) for layer in layers for s in snaps]
    gap_keys = [(c, last, layer) for layer in layers for c in ("regular", "overfitted")]
    k = len(snaps)

    def rise_fall(*arrays):
        out = []
        for i in range(len(layers)):
            m = dict(zip(snaps, _means(*arrays[i * k:(i + 1) * k])))
            out.append(max((min(m[first] - m[s], m[last] - m[s]) for s in middle), default=float("nan")))
        return min(out)

    def gap(*arrays):
        m = _means(*arrays)
        return min(m[2 * i] - m[2 * i + 1] for i in range(len(layers)))

    out = {"overfit": paired_effect("overfitted minus regular NCE at the last snapshot (nats)", gap,
                                    [nll[key] for key in gap_keys])}
    if middle:
        out["rise-fall"] = paired_effect("smaller of the NCE's rise and fall at its best middle snapshot (nats)",
                                         rise_fall, [nll[key] for key in rise_keys])
    else:
        out["rise-fall"] = Effect("rise then fall", 0.0, None, None,
                                  why="fewer than three snapshots: no intermediate snapshot to peak at")
    return out
