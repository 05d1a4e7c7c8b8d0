"""Fisher–Rao distance and geodesics of diagonal Gaussians against closed forms, invariances and the ODE."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from replab.geometry import (euclidean_path_length, fisher_rao_distance, fisher_rao_geodesic, fisher_rao_log,
                             fisher_rao_univariate_distance, path_length)


def _random_points(gen, shape, dtype=torch.float64):
    mu = 3 * torch.randn(shape, generator=gen, dtype=dtype)
    sigma = torch.exp(torch.randn(shape, generator=gen, dtype=dtype))
    return mu, sigma


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_univariate_matches_arccosh_closed_form(gen):
    m1, s1 = _random_points(gen, (200, 1))
    m2, s2 = _random_points(gen, (200, 1))
    expected = math.sqrt(2) * np.arccosh(
        1 + ((m1 - m2).numpy() ** 2 / 2 + (s1 - s2).numpy() ** 2) / (2 * s1.numpy() * s2.numpy()))
    np.testing.assert_allclose(fisher_rao_distance(m1, s1, m2, s2).numpy(), expected[:, 0], rtol=1e-10)


def test_distance_to_itself_is_zero_and_symmetric(gen):
    m1, s1 = _random_points(gen, (50, 7))
    m2, s2 = _random_points(gen, (50, 7))
    assert torch.equal(fisher_rao_distance(m1, s1, m1, s1), torch.zeros(50, dtype=torch.float64))
    torch.testing.assert_close(fisher_rao_distance(m1, s1, m2, s2), fisher_rao_distance(m2, s2, m1, s1))
    assert (fisher_rao_distance(m1, s1, m2, s2) > 0).all()


def test_triangle_inequality(gen):
    (m1, s1), (m2, s2), (m3, s3) = (_random_points(gen, (2000, 4)) for _ in range(3))
    d12 = fisher_rao_distance(m1, s1, m2, s2)
    d23 = fisher_rao_distance(m2, s2, m3, s3)
    d13 = fisher_rao_distance(m1, s1, m3, s3)
    assert (d13 <= d12 + d23 + 1e-12).all()


def test_product_metric_combines_dimensions(gen):
    m1, s1 = _random_points(gen, (30, 5))
    m2, s2 = _random_points(gen, (30, 5))
    per_dim = torch.stack([fisher_rao_distance(m1[:, [i]], s1[:, [i]], m2[:, [i]], s2[:, [i]]) for i in range(5)], -1)
    torch.testing.assert_close(fisher_rao_distance(m1, s1, m2, s2), per_dim.norm(dim=-1))
    torch.testing.assert_close(fisher_rao_univariate_distance(m1, s1, m2, s2), per_dim)


@pytest.mark.parametrize("a,b", [(2.5, -1.0), (-0.3, 4.0), (1e-3, 0.0),
                                 (torch.tensor([2.0, -0.5, 7.0], dtype=torch.float64),
                                  torch.tensor([0.0, 3.0, -2.0], dtype=torch.float64))])   # a diagonal map
def test_invariant_to_the_same_affine_map(gen, a, b):
    m1, s1 = _random_points(gen, (100, 3))
    m2, s2 = _random_points(gen, (100, 3))
    before = fisher_rao_distance(m1, s1, m2, s2)
    after = fisher_rao_distance(a * m1 + b, abs(a) * s1, a * m2 + b, abs(a) * s2)
    torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-12)


def test_broadcasts_over_pairs(gen):
    m1, s1 = _random_points(gen, (4, 1, 6))
    m2, s2 = _random_points(gen, (1, 5, 6))
    d = fisher_rao_distance(m1, s1, m2, s2)
    assert d.shape == (4, 5)
    torch.testing.assert_close(d[2, 3], fisher_rao_distance(m1[2, 0], s1[2, 0], m2[0, 3], s2[0, 3]))


def test_geodesic_endpoints_midpoint_and_constant_speed(gen):
    m1, s1 = _random_points(gen, (40, 6))
    m2, s2 = _random_points(gen, (40, 6))
    m2[:5, :3] = m1[:5, :3]   # some dimensions with equal means: vertical lines
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(m1, s1, m2, s2, t)
    assert mu.shape == sigma.shape == (11, 40, 6)
    torch.testing.assert_close(mu[0], m1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sigma[0], s1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mu[-1], m2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sigma[-1], s2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mu[:5, :5, :3], m1[:5, :3].expand(5, 5, 3), rtol=0, atol=1e-12)
    d = fisher_rao_distance(m1, s1, m2, s2)
    for k, tk in enumerate(t):
        torch.testing.assert_close(fisher_rao_distance(m1, s1, mu[k], sigma[k]), tk * d, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(fisher_rao_distance(mu[k], sigma[k], m2, s2), (1 - tk) * d, rtol=1e-8, atol=1e-8)
    mh, sh = fisher_rao_geodesic(m1, s1, m2, s2, 0.5)
    assert (fisher_rao_distance(m1, s1, mh, sh) - fisher_rao_distance(mh, sh, m2, s2)).abs().max() < 1e-6


def test_fine_discretisation_has_the_distance_as_length_and_lines_are_longer(gen):
    m1, s1 = _random_points(gen, (10, 3))
    m2, s2 = _random_points(gen, (10, 3))
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(m1, s1, m2, s2, t)
    d = fisher_rao_distance(m1, s1, m2, s2)
    torch.testing.assert_close(path_length(mu, sigma), d, rtol=1e-6, atol=1e-9)
    # the straight line in (μ, σ) (the "convex hull" of Fig. 4) is never shorter than the geodesic
    tt = t[:, None, None]
    line = path_length((1 - tt) * m1 + tt * m2, (1 - tt) * s1 + tt * s2)
    assert (line >= d - 1e-9).all() and (line > d * 1.001).any()


def _semicircle_velocity(m1, s1, m2, s2):
    """Initial velocity of the unit-interval geodesic from the half-plane picture (independent of the library)."""
    x1, x2 = m1 / math.sqrt(2), m2 / math.sqrt(2)
    D = math.acosh(1 + ((x1 - x2) ** 2 + (s1 - s2) ** 2) / (2 * s1 * s2))
    if x1 == x2:
        direction = np.array([0.0, math.copysign(1.0, s2 - s1)])
    else:
        c = (x1 ** 2 + s1 ** 2 - x2 ** 2 - s2 ** 2) / (2 * (x1 - x2))
        direction = np.array([s1, -(x1 - c)])          # tangent to the circle at (x1, s1)
        direction /= np.linalg.norm(direction)
        if direction[0] * (x2 - x1) < 0:
            direction = -direction
    vx, vy = D * s1 * direction                         # hyperbolic speed D ⇔ Euclidean speed D·y
    return math.sqrt(2) * vx, vy


def _geodesic_ode(_, state):
    # ds² = (dμ² + 2dσ²)/σ²: Γ^μ_{μσ} = −1/σ, Γ^σ_{μμ} = 1/(2σ), Γ^σ_{σσ} = −1/σ
    mu, sigma, dmu, dsigma = state
    return [dmu, dsigma, 2 * dmu * dsigma / sigma, -dmu ** 2 / (2 * sigma) + dsigma ** 2 / sigma]


@pytest.mark.parametrize("m1,s1,m2,s2", [(0.0, 1.0, 3.0, 0.5), (-1.0, 0.2, 2.0, 0.2), (1.0, 0.3, 1.0, 2.0),
                                         (0.5, 2.0, 0.7, 0.05)])
def test_shooting_the_geodesic_equation_agrees_with_the_closed_form(m1, s1, m2, s2):
    v0 = _semicircle_velocity(m1, s1, m2, s2)
    t_eval = np.linspace(0, 1, 9)
    sol = solve_ivp(_geodesic_ode, (0, 1), [m1, s1, *v0], t_eval=t_eval, rtol=1e-11, atol=1e-12, method="DOP853")
    pts = [torch.tensor([v], dtype=torch.float64) for v in (m1, s1, m2, s2)]
    mu, sigma = fisher_rao_geodesic(*pts, torch.tensor(t_eval))
    np.testing.assert_allclose(mu[:, 0].numpy(), sol.y[0], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(sigma[:, 0].numpy(), sol.y[1], rtol=1e-8, atol=1e-9)
    assert abs(sol.y[0, -1] - m2) < 1e-7 and abs(sol.y[1, -1] - s2) < 1e-7
    dmu, dsigma = fisher_rao_log(*pts)
    np.testing.assert_allclose([dmu.item(), dsigma.item()], v0, rtol=1e-9, atol=1e-12)


def test_log_norm_equals_distance_including_near_coincident_points(gen):
    m1, s1 = _random_points(gen, (50, 4))
    m2, s2 = _random_points(gen, (50, 4))
    m2[:10] = m1[:10] + 1e-7
    s2[:10] = s1[:10] * (1 + 1e-7)
    dmu, dsigma = fisher_rao_log(m1, s1, m2, s2)
    norm = torch.sqrt(((dmu ** 2 + 2 * dsigma ** 2) / s1 ** 2).sum(-1))
    torch.testing.assert_close(norm, fisher_rao_distance(m1, s1, m2, s2), rtol=1e-8, atol=1e-14)


def test_far_apart_points_do_not_overflow():
    m1, s1 = torch.tensor([-50.0]), torch.tensor([1e-3])
    m2, s2 = torch.tensor([50.0]), torch.tensor([1e-3])
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(m1.double(), s1.double(), m2.double(), s2.double(), t)
    assert torch.isfinite(mu).all() and torch.isfinite(sigma).all()
    assert abs(mu[2].item()) < 1e-9 and sigma[2].item() > 10   # the geodesic rises high in σ midway
    mu32, sigma32 = fisher_rao_geodesic(m1, s1, m2, s2, t.float())
    torch.testing.assert_close(mu32, mu.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(sigma32, sigma.float(), rtol=1e-4, atol=1e-6)


def test_gradients_are_finite_and_match_finite_differences(gen):
    m1, s1 = _random_points(gen, (3, 2))
    m2, s2 = _random_points(gen, (3, 2))
    m2[0], s2[0] = m1[0], s1[0]    # coincident pair: the gradient must not be NaN
    t = torch.tensor([0.25, 0.5], dtype=torch.float64)
    args = [x.clone().requires_grad_(True) for x in (m1, s1, m2, s2)]
    mu, sigma = fisher_rao_geodesic(*args, t)
    (mu.sum() + sigma.sum() + fisher_rao_distance(*args).sum()).backward()
    assert all(torch.isfinite(a.grad).all() for a in args)
    mask = torch.ones(3, dtype=torch.bool)
    mask[0] = False
    assert torch.autograd.gradcheck(lambda a, b, c, d: fisher_rao_distance(a, b, c, d),
                                    tuple(x[mask].clone().requires_grad_(True) for x in (m1, s1, m2, s2)))
    assert torch.autograd.gradcheck(lambda a, b, c, d: fisher_rao_geodesic(a, b, c, d, t),
                                    tuple(x.clone().requires_grad_(True) for x in (m1, s1, m2, s2)))


def test_euclidean_path_length_of_a_straight_line():
    t = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None]
    a, b = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([3.0, 4.0, 1.0])
    assert euclidean_path_length((1 - t) * a + t * b).item() == pytest.approx(5.0)


@pytest.mark.parametrize("kwargs,message", [
    (dict(sigma1=torch.tensor([0.0, 1.0])), "sigma1: standard deviations must be positive"),
    (dict(mu2=torch.tensor([float("nan"), 1.0])), "mu2: contains NaN values"),
    (dict(mu1=torch.zeros(3)), "shapes do not broadcast"),
    (dict(mu1=torch.tensor(0.0)), "mu1: expected shape"),
])
def test_bad_input_raises(kwargs, message):
    args = dict(mu1=torch.zeros(2), sigma1=torch.ones(2), mu2=torch.ones(2), sigma2=torch.ones(2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        fisher_rao_distance(**args)


def test_geodesic_rejects_positions_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"t: positions along the geodesic must lie in \[0, 1\]"):
        fisher_rao_geodesic(torch.zeros(2), torch.ones(2), torch.ones(2), torch.ones(2), torch.tensor([0.5, 1.5]))


# ------------------------------------------------------------------ the public code's curve (legacy_semicircles)
def test_legacy_semicircles_hand_worked_example():
    # (−1, 1) → (1, 1) in raw (μ, σ): the circle centred at 0 of radius √2, angles 3π/4 → π/4
    pts = [torch.tensor([v], dtype=torch.float64) for v in (-1.0, 1.0, 1.0, 1.0)]
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(*pts, t, legacy_semicircles=True)
    angles = np.array([3, 2.5, 2, 1]) * np.pi / 4
    np.testing.assert_allclose(mu[:, 0].numpy(), math.sqrt(2) * np.cos(angles), atol=1e-12)
    np.testing.assert_allclose(sigma[:, 0].numpy(), math.sqrt(2) * np.sin(angles), atol=1e-12)
    # the Fisher–Rao midpoint is lower: the top of the circle of radius √(1/2 + 1) in (μ/√2, σ)
    _, s_true = fisher_rao_geodesic(*pts, 0.5)
    assert s_true.item() == pytest.approx(math.sqrt(1.5), abs=1e-12)


def test_legacy_semicircles_lie_on_a_circle_at_equal_angles_and_are_not_the_geodesic(gen):
    m1, s1 = _random_points(gen, (20, 3))
    m2, s2 = _random_points(gen, (20, 3))
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(m1, s1, m2, s2, t, legacy_semicircles=True)
    torch.testing.assert_close(mu[0], m1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sigma[-1], s2, rtol=1e-10, atol=1e-10)
    # independent construction: the circumcentre of the first, middle and last points (a 2×2 linear system)
    P = np.stack([mu.numpy(), sigma.numpy()], -1)                # (9, 20, 3, 2)
    a, b, c = P[0], P[4], P[-1]
    A = 2 * np.stack([b - a, c - a], -2)                        # (..., 2, 2)
    rhs = np.stack([(b ** 2).sum(-1) - (a ** 2).sum(-1), (c ** 2).sum(-1) - (a ** 2).sum(-1)], -1)
    centre = np.linalg.solve(A, rhs[..., None])[..., 0]
    np.testing.assert_allclose(centre[..., 1], 0.0, atol=1e-6 * np.abs(centre).max())    # on the μ-axis
    radius = np.linalg.norm(P - centre, axis=-1)
    np.testing.assert_allclose(radius, np.broadcast_to(radius[0], radius.shape), rtol=1e-8)
    v = P - centre
    cross = v[:-1, ..., 0] * v[1:, ..., 1] - v[:-1, ..., 1] * v[1:, ..., 0]
    step = np.arctan2(cross, (v[:-1] * v[1:]).sum(-1))
    np.testing.assert_allclose(step, np.broadcast_to(step[0], step.shape), rtol=1e-7, atol=1e-12)
    # it is longer than the Fisher–Rao distance and its points are not at t·d from the start
    fine = torch.linspace(0, 1, 2001, dtype=torch.float64)
    d = fisher_rao_distance(m1, s1, m2, s2)
    legacy_length = path_length(*fisher_rao_geodesic(m1, s1, m2, s2, fine, legacy_semicircles=True))
    assert (legacy_length >= d - 1e-9).all() and (legacy_length > 1.01 * d).any()
    from_start = fisher_rao_distance(m1, s1, mu[4], sigma[4])
    assert ((from_start - 0.5 * d).abs() > 1e-3 * d).any()


def test_legacy_semicircles_with_equal_means_are_finite_and_continuous():
    m, s1, s2 = torch.tensor([0.3, 0.3], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64), \
        torch.tensor([2.0, 0.1], dtype=torch.float64)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    mu, sigma = fisher_rao_geodesic(m, s1, m, s2, t, legacy_semicircles=True)
    assert torch.isfinite(mu).all() and torch.isfinite(sigma).all()
    torch.testing.assert_close(mu, m.expand(7, 2))
    near_mu, near_sigma = fisher_rao_geodesic(m, s1, m + 1e-5, s2, t, legacy_semicircles=True)
    torch.testing.assert_close(near_mu, mu, rtol=0, atol=1e-4)
    torch.testing.assert_close(near_sigma, sigma, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="legacy_semicircles must be True or False"):
        fisher_rao_geodesic(m, s1, m, s2, t, legacy_semicircles="argo")
