"""All-pairs layer similarity: the heatmaps of Bonheme & Grześ (2022, 2023), computed in batched products.

:func:`cka_matrix` compares every layer of one model with every layer of another (or of itself). Each layer is
reduced once, then every pair comes from one matrix product:

* linear / RBF CKA, Gram route: each layer's centred (or U-centred) n×n Gram is formed once from *centred features*
  (centring the Gram afterwards loses ~1e-3 when activations have a large mean); the flattened Grams of the two
  models are stacked and all HSIC values are one GEMM ``G_x G_yᵀ`` in float64 (float32 sums over n² = 25M entries
  lose ~1e-3). Forming the Grams costs ``n²·Σp``, against ``n·p_x·p_y`` per pair in feature space.
* linear CKA, feature route, when both models are narrow (``Σp_x·Σp_y < n·(Σp_x + Σp_y)``): the centred
  features of all layers are concatenated and every ``‖XᵀY‖²_F`` is a block of one product ``X_allᵀ Y_all``.
* Procrustes: each layer's factor (:func:`replab.similarity.procrustes.procrustes_factor`, at most n × n) is
  computed once; each pair is the nuclear norm of a product of two factors
  (:func:`replab.similarity.procrustes.nuclear_norm_from_factors`).

Everything runs on CUDA when present (``device="auto"``).
"""
from __future__ import annotations

import pandas as pd
import torch

from ..runtime import get_device, progress
from ._inputs import as_named_layers, center_features, prepare, rows_needed
from .cka import hsic_unbiased_features, layer_gram
from .procrustes import normalise, nuclear_norm_from_factors, procrustes_factor

__all__ = ["cka_matrix", "METRICS"]

METRICS = ("linear_cka", "rbf_cka", "procrustes")


def _prepare_layers(layers, what: str, n_min: int, why: str, device: torch.device, n_expected: int | None,
                    dtype: torch.dtype | None = torch.float64):
    named = as_named_layers(layers, what)
    out = {}
    for name, x in named.items():
        t = prepare(x, f"layer {name!r} of {what}", min_rows=n_min, why=why, device=device, dtype=dtype)
        if n_expected is not None and t.shape[0] != n_expected:
            raise ValueError(f"layer {name!r} of {what}: has {t.shape[0]} examples but the other layers have "
                             f"{n_expected}; every layer must hold the same examples (rows)")
        n_expected = t.shape[0]
        out[name] = t
    return out, n_expected


def cka_matrix(xs, ys=None, metric: str = "linear_cka", debiased: bool = False, sigma: float = 0.8,
               device: str | torch.device = "auto", group: int = 4, precision: str = "mixed") -> pd.DataFrame:
    """Similarity of every layer in ``xs`` with every layer in ``ys`` (default: ``xs`` with itself).

    Parameters
    ----------
    xs, ys : dict name -> matrix of shape (n_examples, n_features_l), or a list of matrices (named "0", "1", …)
        Activations of two models over the same ``n_examples`` examples; conv maps are flattened.
    metric : {"linear_cka", "rbf_cka", "procrustes"}
    debiased : bool
        CKA with the unbiased HSIC estimator (needs at least 4 examples). Ignored by Procrustes.
    sigma : float
        RBF bandwidth as a multiple of the median pairwise distance (``rbf_cka`` only).
    device : "auto", "cpu" or "cuda"
    group : int
        How many Gram matrices of ``ys`` are formed at a time (memory: ``group·n²`` float64 numbers).
    precision : {"mixed", "float64"}
        Linear CKA only: "mixed" forms the Grams (or cross-products) in float32 from features centred in float64
        and does every reduction in float64 (measured: 2e-9 from the float64 result at n = 1,000, widths up to
        11,585); "float64" does everything in float64. RBF CKA and Procrustes always run in float64.

    Returns
    -------
    pandas.DataFrame of shape (len(xs), len(ys)), indexed by the layer names of ``xs``, columns those of ``ys``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
    if not (isinstance(group, int) and group >= 1):
        raise ValueError(f"group: expected a positive integer, got {group!r}")
    if precision not in ("mixed", "float64"):
        raise ValueError(f"precision: expected 'mixed' or 'float64', got {precision!r}")
    mixed = precision == "mixed" and metric == "linear_cka"
    # Under mixed precision the layers keep their dtype until centred (in float64), then go to float32.
    dtype, work = (None, torch.float32) if mixed else (torch.float64, torch.float64)
    dev = get_device(device)
    same = ys is None
    n_min, why = rows_needed(debiased and metric != "procrustes")
    px, n = _prepare_layers(xs, "xs", n_min, why, dev, None, dtype)
    py = px if same else _prepare_layers(ys, "ys", n_min, why, dev, n, dtype)[0]
    if metric == "procrustes":
        values = _procrustes_all_pairs(px, py, same)
    elif metric == "linear_cka" and _feature_route_is_cheaper(px, py, n):
        # Narrow layers: cheap, and the debiased formula's cancellations need float64 products (float32 ones
        # were measured 1e-6 off).
        values = _linear_cka_features(px, py, debiased, torch.float64)
    else:
        kernel = "linear" if metric == "linear_cka" else "rbf"
        values = _cka_grams(px, py, same, kernel, sigma, debiased, group, work)
    return pd.DataFrame(values.cpu().numpy(), index=list(px), columns=list(py))


def _feature_route_is_cheaper(px: dict, py: dict, n: int) -> bool:
    wx = sum(t.shape[1] for t in px.values())
    wy = sum(t.shape[1] for t in py.values())
    return wx * wy < n * (wx + wy)


def _linear_cka_features(px: dict, py: dict, debiased: bool, work: torch.dtype) -> torch.Tensor:
    """Every ``‖XᵀY‖²_F`` as a block of one product of the concatenated centred features."""
    xs = [center_features(t, work) for t in px.values()]
    ys = [center_features(t, work) for t in py.values()]
    n = xs[0].shape[0]
    cross = (torch.cat(xs, dim=1).T @ torch.cat(ys, dim=1)).double()
    bx = torch.tensor([0] + [t.shape[1] for t in xs], device=cross.device).cumsum(0).tolist()
    by = torch.tensor([0] + [t.shape[1] for t in ys], device=cross.device).cumsum(0).tolist()
    hsic = torch.stack([torch.stack([cross[bx[i]:bx[i + 1], by[j]:by[j + 1]].square().sum()
                                     for j in range(len(ys))]) for i in range(len(xs))])
    if debiased:
        dx = torch.stack([t.double().square().sum(dim=1) for t in xs], dim=1)  # (n, Lx) squared row norms
        dy = torch.stack([t.double().square().sum(dim=1) for t in ys], dim=1)
        hsic = hsic - n / (n - 2) * (dx.T @ dy) + torch.outer(dx.sum(0), dy.sum(0)) / ((n - 1) * (n - 2))
        self_x = torch.stack([hsic_unbiased_features(t.double(), t.double()) for t in xs])
        self_y = torch.stack([hsic_unbiased_features(t.double(), t.double()) for t in ys])
    else:
        self_x = torch.stack([(t.T @ t).double().square().sum() for t in xs])
        self_y = torch.stack([(t.T @ t).double().square().sum() for t in ys])
    return hsic / torch.sqrt(torch.outer(self_x, self_y))


def _cka_grams(px: dict, py: dict, same: bool, kernel: str, sigma: float, debiased: bool,
               group: int, work: torch.dtype) -> torch.Tensor:
    """All HSIC values as one float64 product of the stacked flattened Grams (each Gram written in place into
    its row, so no second copy of the stack is held)."""
    n = next(iter(px.values())).shape[0]
    dev = next(iter(px.values())).device

    def stacked(layers: dict, names: list, what: str, desc: str | None = None) -> torch.Tensor:
        out = torch.empty(len(names), n * n, dtype=torch.float64, device=dev)
        for i, k in enumerate(progress(names, desc=desc) if desc else names):
            layer_gram(layers[k], kernel, sigma, debiased, work, f"layer {k!r} of {what}", out=out[i].view(n, n))
        return out

    gx = stacked(px, list(px), "xs", desc="Gram matrices (xs)")
    norm_x = torch.linalg.vector_norm(gx, dim=1)
    if same:
        return (gx @ gx.T) / torch.outer(norm_x, norm_x)
    names = list(py)
    cols = []
    for start in progress(range(0, len(names), group), desc="Gram matrices (ys)"):
        gy = stacked(py, names[start:start + group], "ys")
        cols.append((gx @ gy.T) / torch.outer(norm_x, torch.linalg.vector_norm(gy, dim=1)))
        del gy
    return torch.cat(cols, dim=1)


def _procrustes_all_pairs(px: dict, py: dict, same: bool) -> torch.Tensor:
    fx = [procrustes_factor(normalise(t)) for t in progress(px.values(), desc="Procrustes factors (xs)")]
    fy = fx if same else [procrustes_factor(normalise(t)) for t in progress(py.values(),
                                                                            desc="Procrustes factors (ys)")]
    out = torch.empty(len(fx), len(fy), dtype=torch.float64, device=fx[0].f.device)
    pairs = [(i, j) for i in range(len(fx)) for j in range(len(fy)) if not same or j >= i]
    for i, j in progress(pairs, desc="Procrustes pairs"):
        out[i, j] = nuclear_norm_from_factors(fx[i], fy[j])
        if same:
            out[j, i] = out[i, j]
    return out.clamp(0.0, 1.0)
