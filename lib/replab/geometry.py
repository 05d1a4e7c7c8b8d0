"""Geometry of VAE latent spaces: active components and the Fisher–Rao geometry of diagonal Gaussians.

Used by the Peşte et al. (2017) pages (``notebooks/peste2017``).

Active components (Sec. 2.1 of the paper). A latent component "carries information" when it varies over the
data: the eigenvalues of the covariance of the posterior means μ(x) over a dataset are computed, and the count of
eigenvalues above ε = 0.01 is the number of active components.

Fisher–Rao geometry (Sec. 2.3, Figs. 4 and 5). The Fisher information metric of the univariate Gaussian
N(μ, σ²) in the coordinates (μ, σ) is

    ds² = (dμ² + 2 dσ²) / σ²,

which, after (x, y) = (μ/√2, σ), is twice the metric of the Poincaré half-plane (curvature −½). Its distance is

    d(μ₁, σ₁; μ₂, σ₂) = √2 · arccosh(1 + ((μ₁ − μ₂)²/2 + (σ₁ − σ₂)²) / (2 σ₁ σ₂)).

A Gaussian with diagonal covariance is a point of the product of k such half-planes, so its distance is
sqrt(Σᵢ dᵢ²) and its geodesic moves every dimension along its own half-plane geodesic at constant speed, all
over the same parameter interval t ∈ [0, 1].

Points are given as ``mu`` and ``sigma`` (standard deviations, not variances) of shape ``[..., d]``; every
function broadcasts over the leading dimensions, so a batch of pairs is one call. The functions are pure torch,
differentiable, and keep the input dtype (use float64 where precision matters).

The public code of the authors' group draws semicircles in raw (μ, σ), steps the polar angle uniformly and divides
by μ₂ − μ₁ (see the reference notes, §4.4). The default geodesic does none of that; that curve is available as
``fisher_rao_geodesic(..., legacy_semicircles=True)`` so a page can show how far it is from the true geodesic.

Paths between two posteriors (Figs. 4 and 5): their lengths (:func:`path_summary`), the rise of σ along the
geodesic (:func:`variance_rise`), and paths decoded by a VAE: the five interpolations of Fig. 5
(:func:`interpolation_rows`), how sharp a decoded transition is (:func:`transition_sharpness`) and how much
samples vary along a path (:func:`sampling_variability`).
"""
from __future__ import annotations

import math

import torch

from ._validation import check_finite

__all__ = [
    "posterior_mean_spectrum",
    "count_active",
    "active_components",
    "active_units",
    "axis_alignment",
    "fisher_rao_distance",
    "fisher_rao_univariate_distance",
    "fisher_rao_geodesic",
    "fisher_rao_log",
    "path_length",
    "euclidean_path_length",
    "path_summary",
    "variance_rise",
    "variance_rise_counts",
    "transition_sharpness",
    "largest_step",
    "sampling_variability",
    "interpolation_rows",
]

ACTIVE_THRESHOLD = 0.01  # ε of Sec. 2.1


# ----------------------------------------------------------------------------------------------- active components
def _as_means(means, name: str = "means") -> torch.Tensor:
    t = torch.as_tensor(means)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a matrix of shape (n_examples, k), got shape {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise ValueError(f"{name}: needs at least 2 examples to estimate a covariance, got {t.shape[0]}")
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    return check_finite(t, name)


def posterior_mean_spectrum(means) -> torch.Tensor:
    """Eigenvalues of the covariance of the posterior means over a dataset, largest first (Fig. 1).

    Parameters
    ----------
    means : tensor of shape (n_examples, k)
        The means μ(x) of q(z | x) for every example of the dataset.

    Returns
    -------
    tensor of shape (k,)
        The eigenvalues of Cov_x[μ(x)], in descending order, computed in float64 and returned in the input dtype.
        The covariance is normalised by N (as in the authors' code), not N − 1.
    """
    mu = _as_means(means)
    centred = mu.to(torch.float64) - mu.to(torch.float64).mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]
    # eigvalsh is exact for symmetric matrices; tiny negative round-off is clipped to 0
    eig = torch.linalg.eigvalsh(cov).clamp_min(0.0).flip(0)
    return eig.to(mu.dtype)


def count_active(eigenvalues, threshold: float = ACTIVE_THRESHOLD) -> int:
    """The number of eigenvalues (or per-dimension variances) strictly above ``threshold``."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    ev = torch.as_tensor(eigenvalues)
    if ev.ndim != 1:
        raise ValueError(f"eigenvalues: expected a vector, got shape {tuple(ev.shape)}")
    return int((ev > threshold).sum())


def active_components(means, threshold: float = ACTIVE_THRESHOLD) -> int:
    """The number of active latent components: eigenvalues of Cov_x[μ(x)] above ``threshold`` (Sec. 2.1, Fig. 2)."""
    return count_active(posterior_mean_spectrum(means), threshold)


def active_units(means, threshold: float = ACTIVE_THRESHOLD, *, unbiased: bool = False) -> int:
    """The axis-aligned count (Burda et al. 2016's active units): latent dimensions i whose variance
    Var_x[μᵢ(x)] exceeds ``threshold``, normalised by N (``unbiased=True``: by N − 1, as ``torch.var`` and
    Bonheme & Grześ compute it).

    Equal to :func:`active_components` when the principal axes align with the coordinate axes, which the paper
    observes for diagonal Gaussian posteriors.
    """
    mu = _as_means(means).to(torch.float64)
    return count_active(mu.var(0, unbiased=bool(unbiased)), threshold)


def axis_alignment(means, threshold: float = ACTIVE_THRESHOLD, n_components: int | None = None) -> float:
    """How closely the active principal directions of the posterior means lie along coordinate axes (Sec. 2.1).

    With m the number of eigenvalues of Cov_x[μ(x)] above ``threshold`` (or ``n_components``), the energy of the
    top m unit eigenvectors on the m coordinate axes of largest variance, divided by m: the mean squared cosine of
    the principal angles between the span of those eigenvectors and the span of those axes. It is 1 when the
    principal subspace is spanned by coordinate axes and falls towards m/k as it turns away from them; NaN when
    no component is active. Unlike comparing :func:`active_components` with :func:`active_units`, it does not
    depend on which side of ε an axis's variance falls.
    """
    mu = _as_means(means).to(torch.float64)
    centred = mu - mu.mean(0, keepdim=True)
    cov = centred.T @ centred / mu.shape[0]
    eigenvalues, vectors = torch.linalg.eigh(cov)   # ascending
    m = count_active(eigenvalues.clamp_min(0.0), threshold) if n_components is None else int(n_components)
    if not 0 <= m <= mu.shape[1]:
        raise ValueError(f"n_components must lie in [0, {mu.shape[1]}], got {n_components!r}")
    if m == 0:
        return math.nan
    top = vectors[:, -m:]
    axes = torch.argsort(torch.diagonal(cov), descending=True)[:m]
    return float((top[axes] ** 2).sum() / m)


# ----------------------------------------------------------------------------------------------- Fisher–Rao
def _check_points(mu1, sigma1, mu2, sigma2):
    """Tensors of one floating dtype, broadcast together, with finite values and positive sigmas."""
    names = ("mu1", "sigma1", "mu2", "sigma2")
    ts = [torch.as_tensor(v) for v in (mu1, sigma1, mu2, sigma2)]
    dtype = torch.promote_types(torch.promote_types(ts[0].dtype, ts[1].dtype), torch.promote_types(ts[2].dtype,
                                                                                                   ts[3].dtype))
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    ts = [t.to(dtype) for t in ts]
    for t, n in zip(ts, names):
        if t.ndim == 0:
            raise ValueError(f"{n}: expected shape [..., d] with d ≥ 1, got a scalar")
        check_finite(t, n)
    for t, n in ((ts[1], "sigma1"), (ts[3], "sigma2")):
        if (t <= 0).any():
            raise ValueError(f"{n}: standard deviations must be positive, got min {t.min().item():.3g}")
    try:
        return torch.broadcast_tensors(*ts)
    except RuntimeError as exc:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for t, n in zip(ts, names))
        raise ValueError(f"mu1, sigma1, mu2, sigma2: shapes do not broadcast ({shapes})") from exc


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN) gradient at 0, so coincident points stay differentiable."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def _half_plane_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """Poincaré half-plane distance between (μ₁/√2, σ₁) and (μ₂/√2, σ₂), elementwise.

    Written as 2·asinh(|p − q| / (2√(y₁y₂))), equal to arccosh(1 + |p − q|²/(2y₁y₂)) but accurate near 0.
    """
    chord2 = (mu1 - mu2) ** 2 / 2 + (sigma1 - sigma2) ** 2
    return 2 * torch.asinh(_safe_sqrt(chord2) / (2 * torch.sqrt(sigma1 * sigma2)))


def fisher_rao_univariate_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """Fisher–Rao distance between N(μ₁, σ₁²) and N(μ₂, σ₂²), elementwise (no sum over dimensions).

    Parameters
    ----------
    mu1, sigma1, mu2, sigma2 : tensors broadcastable to one shape ``[..., d]``

    Returns
    -------
    tensor of shape ``[..., d]``: √2 times the half-plane distance of each dimension.
    """
    mu1, sigma1, mu2, sigma2 = _check_points(mu1, sigma1, mu2, sigma2)
    return math.sqrt(2.0) * _half_plane_distance(mu1, sigma1, mu2, sigma2)


def fisher_rao_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """Fisher–Rao distance between diagonal Gaussians N(μ₁, diag σ₁²) and N(μ₂, diag σ₂²).

    Parameters
    ----------
    mu1, sigma1, mu2, sigma2 : tensors broadcastable to one shape ``[..., d]``
        Means and standard deviations; the last dimension is the latent dimension.

    Returns
    -------
    tensor of shape ``[...]``: sqrt(Σᵢ dᵢ²), the distance of the product of the univariate manifolds.
    """
    d_i = fisher_rao_univariate_distance(mu1, sigma1, mu2, sigma2)
    return _safe_sqrt((d_i ** 2).sum(-1))


def _sinh_ratio(a: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """sinh(a·D) / sinh(D) for a ∈ [0, 1], D ≥ 0, without overflow for large D and with the limit a at D = 0."""
    small = D < 1e-4
    Ds = torch.where(small, torch.ones_like(D), D)
    # exp((a−1)D)·(1 − e^{−2aD})/(1 − e^{−2D}) never overflows; the series covers D → 0 (error O(D⁴))
    large = torch.exp((a - 1) * Ds) * torch.expm1(-2 * a * Ds) / torch.expm1(-2 * Ds)
    series = a * (1 + (a ** 2 - 1) * D ** 2 / 6)
    return torch.where(small, series, large)


def _legacy_semicircles(mu1, sigma1, mu2, sigma2, tt):
    """The interpolation of the authors' group's public code (``VAE._gaussian_interpolations``), elementwise.

    In raw (μ, σ) coordinates (no μ/√2), the circle centred on the μ-axis through both points, with centre
    c = (μ₁² + σ₁² − μ₂² − σ₂²) / (2(μ₁ − μ₂)) and radius r, is walked at uniform steps of the polar angle
    θ around c: μ = c + r·cos θ, σ = r·sin θ. That code divides by μ₂ − μ₁; here dimensions whose means
    (nearly) coincide take the limit of the construction, the straight segment in σ at fixed μ.
    """
    dm = mu1 - mu2
    near = dm.abs() <= 1e-7 * (sigma1 + sigma2)
    dms = torch.where(near, torch.ones_like(dm), dm)
    c = (mu1 ** 2 + sigma1 ** 2 - mu2 ** 2 - sigma2 ** 2) / (2 * dms)
    r = torch.hypot(mu1 - c, sigma1)
    theta1 = torch.atan2(sigma1, mu1 - c)             # in (0, π) because σ > 0
    theta2 = torch.atan2(sigma2, mu2 - c)
    theta = theta1 + tt * (theta2 - theta1)
    mu = torch.where(near, mu1 + tt * (mu2 - mu1), c + r * torch.cos(theta))
    sigma = torch.where(near, sigma1 + tt * (sigma2 - sigma1), r * torch.sin(theta))
    return mu, sigma


def fisher_rao_geodesic(mu1, sigma1, mu2, sigma2, t, legacy_semicircles: bool = False):
    """Points at constant speed along the Fisher–Rao geodesic between two diagonal Gaussians (Fig. 4).

    Each dimension follows its half-plane geodesic (a vertical line when μ₁ = μ₂, a semicircle centred on the
    μ-axis otherwise) at constant speed, all dimensions over the same t ∈ [0, 1], which is the geodesic of the
    product manifold: the point at t is at distance t·d from the start and (1 − t)·d from the end.

    The curve is computed in the hyperboloid model, where the geodesic is
    γ(t) = [sinh((1 − t)D)·P + sinh(tD)·Q] / sinh(D), with D the half-plane distance. In half-plane coordinates
    this reads 1/y(t) = w₀/y₁ + w₁/y₂ and x(t)/y(t) = w₀x₁/y₁ + w₁x₂/y₂ with positive weights
    w₀ = sinh((1 − t)D)/sinh D, w₁ = sinh(tD)/sinh D: no circle centre is formed, so equal means need no special
    case and nothing is divided by μ₂ − μ₁.

    Parameters
    ----------
    mu1, sigma1, mu2, sigma2 : tensors broadcastable to one shape ``[..., d]``
    t : float, or tensor of shape (n_t,)
        Positions along the curve, 0 at the first Gaussian and 1 at the second (values outside [0, 1] are
        rejected).
    legacy_semicircles : bool
        False (default): the Fisher–Rao geodesic above. True: the curve of the authors' group's public code
        (reference notes §4.4): semicircles in raw (μ, σ), i.e. without the μ → μ/√2 rescaling, walked at
        uniform polar-angle steps, each dimension on its own. It has the right endpoints but is neither the
        Fisher–Rao geodesic nor at constant speed; its Fisher–Rao length exceeds the distance.

    Returns
    -------
    mu, sigma : tensors of shape ``[n_t, ..., d]`` (``[..., d]`` when ``t`` is a scalar).
    """
    if not isinstance(legacy_semicircles, bool):
        raise ValueError(f"legacy_semicircles must be True or False, got {legacy_semicircles!r}")
    mu1, sigma1, mu2, sigma2 = _check_points(mu1, sigma1, mu2, sigma2)
    tt = torch.as_tensor(t, dtype=mu1.dtype, device=mu1.device)
    if tt.ndim > 1:
        raise ValueError(f"t: expected a scalar or a vector of positions, got shape {tuple(tt.shape)}")
    check_finite(tt, "t")
    if ((tt < 0) | (tt > 1)).any():
        raise ValueError("t: positions along the geodesic must lie in [0, 1]")
    scalar = tt.ndim == 0
    tt = tt.reshape((-1,) + (1,) * mu1.ndim)            # (n_t, 1, ..., 1)
    if legacy_semicircles:
        mu, sigma = _legacy_semicircles(mu1, sigma1, mu2, sigma2, tt)
        return (mu[0], sigma[0]) if scalar else (mu, sigma)
    D = _half_plane_distance(mu1, sigma1, mu2, sigma2)  # [..., d]
    w0 = _sinh_ratio(1 - tt, D)
    w1 = _sinh_ratio(tt, D)
    inv_y = w0 / sigma1 + w1 / sigma2                   # 1/σ(t)
    x_over_y = w0 * (mu1 / sigma1) + w1 * (mu2 / sigma2)   # the √2 of x = μ/√2 cancels on both sides
    sigma = 1 / inv_y
    mu = x_over_y * sigma
    if scalar:
        return mu[0], sigma[0]
    return mu, sigma


def fisher_rao_log(mu1, sigma1, mu2, sigma2):
    """Initial velocity (dμ/dt, dσ/dt) at t = 0 of :func:`fisher_rao_geodesic`: the Riemannian log map.

    Differentiating the weights at t = 0 gives w₀' = −D·coth D and w₁' = D / sinh D, so with u = 1/σ and
    v = μ/σ: dσ/dt = −σ₁²·u'(0) and dμ/dt = σ₁·v'(0) − μ₁σ₁·u'(0).

    Returns
    -------
    dmu, dsigma : tensors of shape ``[..., d]``; their Fisher–Rao norm equals :func:`fisher_rao_distance`.
    """
    mu1, sigma1, mu2, sigma2 = _check_points(mu1, sigma1, mu2, sigma2)
    D = _half_plane_distance(mu1, sigma1, mu2, sigma2)
    small = D < 1e-4
    Ds = torch.where(small, torch.ones_like(D), D)
    w0p = torch.where(small, -(1 + D ** 2 / 3), -Ds / torch.tanh(Ds))
    w1p = torch.where(small, 1 - D ** 2 / 6, Ds / torch.sinh(Ds))
    du = w0p / sigma1 + w1p / sigma2
    dv = w0p * (mu1 / sigma1) + w1p * (mu2 / sigma2)
    return sigma1 * dv - mu1 * sigma1 * du, -(sigma1 ** 2) * du


def path_length(mu, sigma) -> torch.Tensor:
    """Fisher–Rao length of a discretised path: the sum of distances between consecutive points.

    Parameters
    ----------
    mu, sigma : tensors of shape ``[n_points, ..., d]``
        The path's points in order along the first dimension.

    Returns
    -------
    tensor of shape ``[...]``. For a geodesic it equals the distance of its ends; any other path is longer.
    """
    mu, sigma = torch.as_tensor(mu), torch.as_tensor(sigma)
    if mu.ndim < 2 or mu.shape[0] < 2:
        raise ValueError(f"mu: expected shape [n_points ≥ 2, ..., d], got {tuple(mu.shape)}")
    return fisher_rao_distance(mu[:-1], sigma[:-1], mu[1:], sigma[1:]).sum(0)


def euclidean_path_length(points) -> torch.Tensor:
    """Euclidean length of a discretised path of shape ``[n_points, ..., d]`` (sum of consecutive steps)."""
    p = torch.as_tensor(points)
    if p.ndim < 2 or p.shape[0] < 2:
        raise ValueError(f"points: expected shape [n_points ≥ 2, ..., d], got {tuple(p.shape)}")
    check_finite(p, "points")
    return torch.linalg.vector_norm(p[1:] - p[:-1], dim=-1).sum(0)


# ----------------------------------------------------------------------------------------------- paths (Figs. 4, 5)


def path_summary(mu1, sigma1, mu2, sigma2, n_steps: int = 200) -> dict:
    """Lengths between two diagonal Gaussians (Fig. 4): the Fisher–Rao distance (the geodesic's length), the
    Fisher–Rao lengths of the straight line in (μ, σ) and of the public code's semicircles
    (``fisher_rao_geodesic(..., legacy_semicircles=True)``), and the Euclidean distance of the means.

    Inputs of shape ``[..., d]``; outputs are tensors of shape ``[...]`` (float64).
    """
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    s = torch.linspace(0, 1, n_steps, dtype=torch.float64)
    t = s.reshape((-1,) + (1,) * args[0].ndim)
    line_mu = (1 - t) * args[0] + t * args[2]
    line_sigma = (1 - t) * args[1] + t * args[3]
    return {"fisher_rao_distance": fisher_rao_distance(*args),
            "fisher_rao_length_of_line": path_length(line_mu, line_sigma),
            "fisher_rao_length_of_legacy_semicircles": path_length(
                *fisher_rao_geodesic(*args, s, legacy_semicircles=True)),
            "euclidean_distance_of_means": euclidean_path_length(torch.stack([args[0], args[2]]))}


def variance_rise_counts(mu1, sigma1, mu2, sigma2, n_steps: int = 101,
                         min_separation: float = 1.0) -> tuple[int, int]:
    """``(rising, separated)``: of the latent dimensions whose means are at least ``min_separation`` endpoint-σ
    apart (the larger of the two σ), the number whose σ along the geodesic rises above both endpoints' σ (Fig. 4),
    and the number of such dimensions. Along the straight line in (μ, σ) σ never rises."""
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    _, g_sigma = fisher_rao_geodesic(*args, torch.linspace(0, 1, n_steps, dtype=torch.float64))
    separated = (args[0] - args[2]).abs() >= min_separation * torch.maximum(args[1], args[3])
    rises = g_sigma.amax(0) > torch.maximum(args[1], args[3]) * (1 + 1e-9)
    return int((rises & separated).sum()), int(separated.sum())


def variance_rise(mu1, sigma1, mu2, sigma2, n_steps: int = 101, min_separation: float = 1.0) -> float:
    """The share of latent dimensions whose σ along the geodesic rises above both endpoints' σ (Fig. 4).

    Only dimensions whose means are at least ``min_separation`` endpoint-σ apart are counted (the rise is
    negligible for nearby means); returns NaN when there is none (:func:`variance_rise_counts` gives the counts).
    """
    rising, separated = variance_rise_counts(mu1, sigma1, mu2, sigma2, n_steps, min_separation)
    return rising / separated if separated else math.nan


def _steps(images) -> torch.Tensor:
    flat = torch.as_tensor(images).double().reshape(images.shape[0], -1)
    return torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1)


def transition_sharpness(images) -> float:
    """The share of a path's total pixel change made by its largest single step, in (0, 1].

    For images (n_steps, ...) along a path, the step sizes are ‖x_{i+1} − x_i‖; a gradual morph spreads the
    change evenly (share ≈ 1/(n_steps − 1)), a sharp transition concentrates it in one step (share → 1).
    """
    steps = _steps(images)
    total = steps.sum()
    if total == 0:
        raise ValueError("images: the path does not change; sharpness is undefined")
    return float(steps.max() / total)


def largest_step(images) -> int:
    """Index of the image that ends the largest step of a path (the transition image, framed in Fig. 5)."""
    return int(_steps(images).argmax()) + 1


def _on_device(model, device):
    from .runtime import get_device

    dev = get_device(device)
    return model.to(dev).eval(), dev


@torch.no_grad()
def sampling_variability(model, mu1, sigma1, mu2, sigma2, n_steps: int = 10, n_draws: int = 8, seed: int = 0,
                         device="auto") -> dict:
    """How much decoded samples vary around the decoded means along two paths between the same Gaussians.

    For the Fisher–Rao geodesic and for the straight line in (μ, σ), the mean pixel distance
    ‖decode(μ(t) + σ(t)ε) − decode(μ(t))‖ over t and ``n_draws`` draws of ε (the same draws on both paths).
    ``model`` needs ``decode(z)`` returning Bernoulli logits. Returns ``{"geodesic": float, "line": float}``.
    """
    model, dev = _on_device(model, device)
    args = [torch.as_tensor(a).double() for a in (mu1, sigma1, mu2, sigma2)]
    t = torch.linspace(0, 1, n_steps, dtype=torch.float64)
    tc = t[:, None]
    paths = {"geodesic": fisher_rao_geodesic(*args, t),
             "line": ((1 - tc) * args[0] + tc * args[2], (1 - tc) * args[1] + tc * args[3])}
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((n_draws, n_steps, args[0].shape[-1]), generator=gen, dtype=torch.float64)
    dtype = next(model.parameters()).dtype
    out = {}
    for name, (m, s) in paths.items():
        centre = torch.sigmoid(model.decode(m.to(dev, dtype))).flatten(1)
        draws = torch.sigmoid(model.decode((m + s * eps).to(dev, dtype))).flatten(2)
        out[name] = float(torch.linalg.vector_norm(draws - centre, dim=-1).mean())
    return out


@torch.no_grad()
def interpolation_rows(model, x1: torch.Tensor, x2: torch.Tensor, n_steps: int = 10, seed: int = 0,
                       device="auto") -> dict[str, torch.Tensor]:
    """The five interpolations of Fig. 5 between two images ``x1``, ``x2`` of shape (1, H, W) with a VAE
    (``encode(x) -> (μ, log σ²)``, ``decode(z)`` -> Bernoulli logits).

    Rows, each (n_steps, 1, H, W) in [0, 1]:
    ``"pixels"`` the straight line in input space; ``"means"`` decoded straight line between μ₁ and μ₂;
    ``"samples"`` decoded straight line between z₁ ~ q(z|x₁) and z₂ ~ q(z|x₂); ``"geodesic, sampled"`` one
    z ~ N(μ(t), σ(t)²) per point of the Fisher–Rao geodesic; ``"geodesic, means"`` decoded μ(t) of the geodesic.
    Decoded images are the Bernoulli means (sigmoid of the logits).
    """
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps!r}")
    model, dev = _on_device(model, device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    t = torch.linspace(0, 1, n_steps, device=dev)
    tc = t[:, None]
    x = torch.stack([x1, x2]).to(dev)
    mu, logvar = model.encode(x)
    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn(mu.shape, generator=gen, device=dev)
    g_mu, g_sigma = fisher_rao_geodesic(mu[0].double(), sigma[0].double(), mu[1].double(), sigma[1].double(),
                                        t.double())
    g_mu, g_sigma = g_mu.to(mu.dtype), g_sigma.to(mu.dtype)
    g_z = g_mu + g_sigma * torch.randn(g_mu.shape, generator=gen, device=dev)
    decode = lambda codes: torch.sigmoid(model.decode(codes)).cpu()  # noqa: E731
    t_img = t.reshape(-1, 1, 1, 1)
    return {
        "pixels": ((1 - t_img) * x[0] + t_img * x[1]).cpu(),
        "means": decode((1 - tc) * mu[0] + tc * mu[1]),
        "samples": decode((1 - tc) * z[0] + tc * z[1]),
        "geodesic, sampled": decode(g_z),
        "geodesic, means": decode(g_mu),
    }
