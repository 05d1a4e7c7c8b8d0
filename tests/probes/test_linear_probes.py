"""Linear probes: accuracy on separable and random data, optimality of the fit, feature kinds, snapshots."""
import warnings

import numpy as np
import pytest
import torch

from replab.probes import FEATURE_KINDS, LinearProbe, evaluate_snapshots, probe_accuracy, probe_features


def _blobs(n, k, n_classes, separation, seed):
    rng = np.random.default_rng(seed)
    centres = separation * rng.standard_normal((n_classes, k))
    y = rng.integers(0, n_classes, n)
    return centres[y] + rng.standard_normal((n, k)), y


def test_separable_data_is_classified_almost_perfectly():
    X, y = _blobs(3000, 8, 5, separation=6.0, seed=0)
    result = probe_accuracy(X[:2000], y[:2000], X[2000:], y[2000:])
    assert result["converged"]
    assert result["accuracy"] > 0.99


def test_random_labels_give_chance_accuracy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6000, 10))
    y = rng.integers(0, 10, 6000)
    result = probe_accuracy(X[:3000], y[:3000], X[3000:], y[3000:])
    assert abs(result["accuracy"] - 0.1) < 0.03


def test_fit_is_a_stationary_point_of_the_penalised_likelihood():
    # independent optimality check: C·Σᵢ xᵢ(pᵢ − yᵢ) + W = 0 and Σᵢ (pᵢ − yᵢ) = 0 (unpenalised intercept)
    X, y = _blobs(500, 4, 3, separation=1.0, seed=2)
    probe = LinearProbe(C=0.5, tol=1e-10).fit(X, y)
    Z = probe.scaler_.transform(X)
    W, b = probe.model_.coef_, probe.model_.intercept_
    logits = Z @ W.T + b
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    Y = np.eye(3)[y]
    grad_w = 0.5 * (P - Y).T @ Z + W
    assert np.abs(grad_w).max() < 1e-4
    assert np.abs((P - Y).sum(0)).max() < 1e-4


def test_standardisation_makes_the_probe_invariant_to_feature_scales():
    X, y = _blobs(800, 5, 4, separation=1.5, seed=3)
    scales = np.array([1e-3, 1.0, 50.0, 7.0, 1e3])
    a = LinearProbe().fit(X, y).predict(X)
    b = LinearProbe().fit(X * scales + 3.0, y).predict(X * scales + 3.0)
    assert np.mean(a == b) > 0.995


def test_variances_add_information_only_when_they_carry_the_class():
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.integers(0, 2, n)
    mu = rng.standard_normal((n, 3))
    sigma = np.where(y[:, None] == 1, 0.2, 1.0) * np.ones((n, 3))
    split = slice(0, 1000), slice(1000, n)
    acc = {}
    for kind in ("means", "means+variances"):
        f_tr = probe_features(mu[split[0]], sigma[split[0]], kind)
        f_te = probe_features(mu[split[1]], sigma[split[1]], kind)
        acc[kind] = probe_accuracy(f_tr, y[split[0]], f_te, y[split[1]])["accuracy"]
    assert acc["means+variances"] > 0.99
    assert abs(acc["means"] - 0.5) < 0.06


def test_feature_kinds_shapes_and_sampling():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(400, 6, generator=g)
    sigma = torch.rand(400, 6, generator=g) + 0.5
    assert probe_features(mu, kind="means").shape == (400, 6)
    mv = probe_features(mu, sigma, "means+variances")
    np.testing.assert_allclose(mv[:, 6:], sigma.double().numpy() ** 2)
    z1 = probe_features(mu, sigma, "samples", seed=7)
    np.testing.assert_array_equal(z1, probe_features(mu, sigma, "samples", seed=7))
    assert not np.allclose(z1, probe_features(mu, sigma, "samples", seed=8))
    eps = (z1 - mu.double().numpy()) / sigma.double().numpy()
    assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1) < 0.05


def test_evaluate_snapshots_records_each_kind_and_carries_metadata():
    X, y = _blobs(600, 4, 3, separation=5.0, seed=5)
    sigma = np.full_like(X, 0.1)
    snaps = [{"epoch": e, "mu_train": X[:400] * (e + 1), "sigma_train": sigma[:400], "mu_test": X[400:] * (e + 1),
              "sigma_test": sigma[400:]} for e in range(2)]
    records = evaluate_snapshots(snaps, y[:400], y[400:])
    assert [(r["epoch"], r["kind"]) for r in records] == [(e, k) for e in range(2) for k in FEATURE_KINDS]
    assert all(r["accuracy"] > 0.97 and r["converged"] for r in records)
    assert records == evaluate_snapshots(snaps, y[:400], y[400:])   # same seed, same numbers


def test_non_convergence_is_reported():
    X, y = _blobs(500, 6, 4, separation=1.0, seed=6)
    with pytest.warns(RuntimeWarning, match="did not converge in max_iter=2"):
        probe = LinearProbe(max_iter=2).fit(X, y)
    assert not probe.converged_
    with pytest.raises(RuntimeError, match="did not converge"):
        LinearProbe(max_iter=2, on_no_convergence="raise").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LinearProbe().fit(X, y).converged_


@pytest.mark.parametrize("call,message", [
    (lambda: probe_features(np.zeros((3, 2)), kind="logits"), "kind must be one of"),
    (lambda: probe_features(np.zeros((3, 2)), None, "samples"), "sigma: required"),
    (lambda: probe_features(np.zeros((3, 2)), -np.ones((3, 2)), "samples"), "sigma: standard deviations must be"),
    (lambda: LinearProbe().fit(np.zeros((3, 2)), [0, 1]), "X and y must have the same number of examples"),
    (lambda: LinearProbe().fit(np.zeros((3, 2)), [1, 1, 1]), "y: needs at least 2 classes"),
    (lambda: LinearProbe(C=0).fit(np.zeros((3, 2)), [0, 1, 1]), "C must be a positive number"),
    (lambda: LinearProbe().fit(np.full((3, 2), np.nan), [0, 1, 1]), "X: contains NaN values"),
    (lambda: evaluate_snapshots([{"mu_train": 0}], [0], [0]), r"snapshots\[0\]: missing"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="call fit"):
        LinearProbe().predict(np.zeros((2, 2)))


def _softmax_sgd_reference(X, y, n_classes, steps, lr, batch, W0, orders):
    """Plain NumPy minibatch SGD of a softmax layer with the analytic cross-entropy gradient."""
    W, b = W0.copy(), np.zeros(n_classes)
    Y = np.eye(n_classes)[y]
    for idx in orders[:steps]:
        logits = X[idx] @ W + b
        P = np.exp(logits - logits.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        W -= lr * X[idx].T @ (P - Y[idx]) / len(idx)
        b -= lr * (P - Y[idx]).mean(0)
    return W, b


def test_legacy_fixed_steps_is_plain_sgd_on_raw_features():
    X, y = _blobs(300, 4, 3, separation=2.0, seed=7)
    probe = LinearProbe(legacy_fixed_steps=7, legacy_learning_rate=0.05, legacy_batch_size=100, seed=3).fit(X, y)
    assert probe.converged_ is None and probe.n_iter_ == 7
    # rebuild the same initial weights and minibatch order from the documented seeding
    gen = torch.Generator().manual_seed(3)
    W0 = (torch.randn(4, 3, generator=gen, dtype=torch.float64) / 2.0).numpy()
    orders = []
    while len(orders) < 7:
        perm = torch.randperm(300, generator=gen).numpy()
        orders += [perm[i:i + 100] for i in range(0, 300, 100)]
    W, b = _softmax_sgd_reference(X, y, 3, 7, 0.05, 100, W0, orders)
    np.testing.assert_allclose(probe.model_[0], W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(probe.model_[1], b, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(probe.predict(X), np.argmax(X @ W + b, 1))


def test_legacy_fixed_steps_depends_on_the_step_count_unlike_the_converged_probe():
    # unstandardised features on very different scales: few SGD steps stay far from the converged accuracy
    X, y = _blobs(2000, 6, 4, separation=1.5, seed=8)
    X = X * np.array([1e-2, 1e-2, 1.0, 1.0, 1e-2, 1e-2])
    converged = probe_accuracy(X[:1500], y[:1500], X[1500:], y[1500:])["accuracy"]
    few = probe_accuracy(X[:1500], y[:1500], X[1500:], y[1500:], legacy_fixed_steps=5, legacy_learning_rate=0.01)
    many = probe_accuracy(X[:1500], y[:1500], X[1500:], y[1500:], legacy_fixed_steps=3000, legacy_learning_rate=0.5)
    assert few["converged"] is None
    assert few["accuracy"] < converged - 0.05
    assert many["accuracy"] > few["accuracy"]
    with pytest.raises(ValueError, match="legacy_fixed_steps must be None or a positive integer"):
        LinearProbe(legacy_fixed_steps=0).fit(X, y)
    with pytest.raises(ValueError, match="legacy_learning_rate must be a positive number"):
        LinearProbe(legacy_fixed_steps=3, legacy_learning_rate=-1).fit(X, y)
