"""Linear probes on VAE latents: how linearly separable the classes are in the latent space.

Used by ``notebooks/peste2017/03-linear-separability`` (Peşte et al. 2017, Sec. 2.2, Fig. 3): a multinomial
logistic regression is fitted at several training snapshots on three kinds of features of q(z | x):

- ``"means"``: μ(x);
- ``"means+variances"``: [μ(x), σ²(x)], the mean and the diagonal of the covariance;
- ``"samples"``: one z ~ q(z | x) per example (drawn independently for the training and the test set).

Unlike the authors' group's code, which trains a linear softmax layer for a fixed number of steps (reference
notes §4.4), the probe here is scikit-learn's ``LogisticRegression`` (lbfgs, multinomial) on standardised
features, fitted until its solver converges; non-convergence is reported, never silent. That code's procedure is
kept behind ``LinearProbe(legacy_fixed_steps=n)``: a softmax layer on the raw features, trained by minibatch SGD
for exactly ``n`` steps, whose accuracy depends on the step count and the learning rate.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ._validation import as_tensor_2d, check_finite, check_min_rows, check_same_rows

__all__ = ["FEATURE_KINDS", "FACTOR_CLASSIFIERS", "LinearProbe", "probe_features", "probe_accuracy",
           "evaluate_snapshots", "factor_classification"]

FEATURE_KINDS = ("means", "means+variances", "samples")
FACTOR_CLASSIFIERS = ("logistic_regression", "gradient_boosting")


def probe_features(mu, sigma=None, kind: str = "means", seed: int = 0) -> np.ndarray:
    """Features of q(z | x) = N(μ, diag σ²) for a probe, as a float64 array.

    Parameters
    ----------
    mu, sigma : tensors or arrays of shape (n_examples, k)
        Posterior means and standard deviations (``sigma`` may be omitted for ``kind="means"``).
    kind : one of ``FEATURE_KINDS``
        ``"means"`` → μ (n, k); ``"means+variances"`` → [μ, σ²] (n, 2k); ``"samples"`` → μ + σ·ε (n, k),
        ε ~ N(0, I) drawn from a generator seeded with ``seed``.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {FEATURE_KINDS}, got {kind!r}")
    m = check_finite(as_tensor_2d(mu, "mu", dtype=torch.float64), "mu")
    if kind == "means":
        return m.cpu().numpy()
    if sigma is None:
        raise ValueError(f"sigma: required for kind={kind!r}")
    s = check_finite(as_tensor_2d(sigma, "sigma", dtype=torch.float64), "sigma")
    if s.shape != m.shape:
        raise ValueError(f"sigma: expected the shape of mu {tuple(m.shape)}, got {tuple(s.shape)}")
    if (s <= 0).any():
        raise ValueError("sigma: standard deviations must be positive")
    if kind == "means+variances":
        return torch.cat([m, s ** 2], 1).cpu().numpy()
    gen = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(m.shape, generator=gen, dtype=torch.float64)
    return (m.cpu() + s.cpu() * eps).numpy()


class LinearProbe:
    """Multinomial logistic regression on standardised features, fitted to convergence.

    Parameters
    ----------
    C : float
        Inverse L2 strength of scikit-learn's ``LogisticRegression`` (1.0, its default).
    max_iter : int
        lbfgs iteration cap; convergence is checked after fitting (``converged_``).
    tol : float
        lbfgs tolerance on the projected gradient (scikit-learn's default, 1e-4).
    on_no_convergence : ``"warn"`` or ``"raise"``
        What to do when lbfgs stops at ``max_iter``: a ``RuntimeWarning`` naming the cap, or a ``RuntimeError``.
    legacy_fixed_steps : None (default) or a positive integer
        None: the converged, L2-penalised logistic regression above. An integer n reproduces the authors' group's
        ``LatentVarsClassificationHook`` (reference notes §4.4): a linear softmax layer (weights drawn with
        standard deviation 1/√n_features, zero bias) on the unstandardised features, unpenalised, trained by
        plain SGD on the mean cross-entropy for exactly n minibatch steps. ``converged_`` is then None (not
        checked) and ``C``, ``max_iter``, ``tol`` are unused.
    legacy_learning_rate, legacy_batch_size : float, int
        SGD step size and minibatch size of the legacy procedure.
    seed : int
        Seeds the legacy procedure's initial weights and minibatch order.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 5000, tol: float = 1e-4, on_no_convergence: str = "warn",
                 legacy_fixed_steps: int | None = None, legacy_learning_rate: float = 0.1,
                 legacy_batch_size: int = 100, seed: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.on_no_convergence = on_no_convergence
        self.legacy_fixed_steps = legacy_fixed_steps
        self.legacy_learning_rate = legacy_learning_rate
        self.legacy_batch_size = legacy_batch_size
        self.seed = seed

    def _check_params(self):
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise ValueError(f"tol must be a positive number, got {self.tol!r}")
        if self.on_no_convergence not in ("warn", "raise"):
            raise ValueError(f"on_no_convergence must be 'warn' or 'raise', got {self.on_no_convergence!r}")
        if self.legacy_fixed_steps is not None:
            if not (isinstance(self.legacy_fixed_steps, (int, np.integer)) and not isinstance(self.legacy_fixed_steps,
                                                                                               bool)
                    and self.legacy_fixed_steps >= 1):
                raise ValueError(f"legacy_fixed_steps must be None or a positive integer, got "
                                 f"{self.legacy_fixed_steps!r}")
            if not (isinstance(self.legacy_learning_rate, (int, float)) and self.legacy_learning_rate > 0):
                raise ValueError(f"legacy_learning_rate must be a positive number, got {self.legacy_learning_rate!r}")
            if not (isinstance(self.legacy_batch_size, (int, np.integer)) and self.legacy_batch_size >= 1):
                raise ValueError(f"legacy_batch_size must be a positive integer, got {self.legacy_batch_size!r}")

    @staticmethod
    def _check_xy(X, y):
        Xt = check_finite(as_tensor_2d(X, "X", dtype=torch.float64), "X")
        yt = torch.as_tensor(np.asarray(y))
        if yt.ndim != 1:
            raise ValueError(f"y: expected a vector of labels, got shape {tuple(yt.shape)}")
        check_same_rows(Xt, yt, ("X", "y"))
        return Xt.cpu().numpy(), yt.cpu().numpy()

    def fit(self, X, y) -> "LinearProbe":
        """Standardise ``X`` (n_examples, n_features), fit the logistic regression on labels ``y`` (n_examples,)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        self._check_params()
        X, y = self._check_xy(X, y)
        check_min_rows(torch.as_tensor(X), 2, "X")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y: needs at least 2 classes, got {len(self.classes_)}")
        if self.legacy_fixed_steps is not None:
            return self._fit_legacy(X, y)
        self.scaler_ = StandardScaler().fit(X)
        model = LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings():
            # convergence is checked below from n_iter_, with a message that names the probe's settings
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(self.scaler_.transform(X), y)
        self.model_ = model
        self.n_iter_ = int(np.max(model.n_iter_))
        self.converged_ = self.n_iter_ < self.max_iter
        if not self.converged_:
            msg = (f"LinearProbe: lbfgs did not converge in max_iter={self.max_iter} iterations (tol={self.tol}); "
                   "raise max_iter")
            if self.on_no_convergence == "raise":
                raise RuntimeError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return self

    def _fit_legacy(self, X: np.ndarray, y: np.ndarray) -> "LinearProbe":
        """Fixed-step minibatch SGD of a softmax layer on the raw features (the legacy procedure)."""
        gen = torch.Generator().manual_seed(int(self.seed))
        Xt = torch.as_tensor(X, dtype=torch.float64)
        yt = torch.as_tensor(np.searchsorted(self.classes_, y))
        n, d = Xt.shape
        W = (torch.randn(d, len(self.classes_), generator=gen, dtype=torch.float64) / math.sqrt(d)).requires_grad_()
        b = torch.zeros(len(self.classes_), dtype=torch.float64, requires_grad=True)
        order, pos = torch.randperm(n, generator=gen), 0
        for _ in range(int(self.legacy_fixed_steps)):
            if pos + self.legacy_batch_size > n:        # a new pass over the data in a new order
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos:pos + self.legacy_batch_size]
            pos += self.legacy_batch_size
            loss = torch.nn.functional.cross_entropy(Xt[idx] @ W + b, yt[idx])
            gW, gb = torch.autograd.grad(loss, (W, b))
            with torch.no_grad():
                W -= self.legacy_learning_rate * gW
                b -= self.legacy_learning_rate * gb
        self.scaler_ = None
        self.n_features_in_ = d
        self.model_ = (W.detach().numpy(), b.detach().numpy())
        self.n_iter_ = int(self.legacy_fixed_steps)
        self.converged_ = None
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise RuntimeError("LinearProbe: call fit(X, y) before predict or score")

    def predict(self, X) -> np.ndarray:
        """Predicted labels of shape (n_examples,)."""
        self._check_fitted()
        Xt = check_finite(as_tensor_2d(X, "X", dtype=torch.float64), "X").cpu().numpy()
        n_features = self.n_features_in_ if self.scaler_ is None else self.scaler_.n_features_in_
        if Xt.shape[1] != n_features:
            raise ValueError(f"X: expected {n_features} features, got {Xt.shape[1]}")
        if self.scaler_ is None:                        # the legacy softmax layer
            W, b = self.model_
            return self.classes_[np.argmax(Xt @ W + b, axis=1)]
        return self.model_.predict(self.scaler_.transform(Xt))

    def score(self, X, y) -> float:
        """Accuracy on (``X``, ``y``)."""
        X_, y_ = self._check_xy(X, y)
        return float(np.mean(self.predict(X_) == y_))


def probe_accuracy(train_features, y_train, test_features, y_test, **probe_kwargs) -> dict:
    """Fit a :class:`LinearProbe` on the training features and return its test accuracy and convergence.

    Returns ``{"accuracy", "train_accuracy", "converged", "n_iter"}``.
    """
    probe = LinearProbe(**probe_kwargs).fit(train_features, y_train)
    return {"accuracy": probe.score(test_features, y_test), "train_accuracy": probe.score(train_features, y_train),
            "converged": probe.converged_, "n_iter": probe.n_iter_}


_SNAPSHOT_KEYS = ("mu_train", "sigma_train", "mu_test", "sigma_test")


def evaluate_snapshots(snapshots: Iterable[Mapping], y_train, y_test, kinds: Iterable[str] = FEATURE_KINDS,
                       seed: int = 0, **probe_kwargs) -> list[dict]:
    """Probe accuracy of every feature kind at every training snapshot (Fig. 3).

    Parameters
    ----------
    snapshots : iterable of mappings
        Each with ``mu_train``, ``sigma_train`` (n_train, k), ``mu_test``, ``sigma_test`` (n_test, k); any other
        entries (such as ``epoch`` or ``k``) are copied into the records.
    y_train, y_test : labels of shape (n_train,) and (n_test,)
    kinds : feature kinds to probe (see :func:`probe_features`)
    seed : seeds the draws of ``"samples"`` (the test draw uses ``seed + 1``, so the two sets are independent)
    **probe_kwargs : passed to :class:`LinearProbe`

    Returns
    -------
    list of dicts, one per (snapshot, kind): the snapshot's metadata, ``kind`` and the result of
    :func:`probe_accuracy`.
    """
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in FEATURE_KINDS:
            raise ValueError(f"kinds: each must be one of {FEATURE_KINDS}, got {kind!r}")
    records = []
    for i, snap in enumerate(snapshots):
        missing = [key for key in _SNAPSHOT_KEYS if key not in snap]
        if missing:
            raise ValueError(f"snapshots[{i}]: missing {missing}")
        meta = {key: value for key, value in snap.items() if key not in _SNAPSHOT_KEYS}
        for kind in kinds:
            train = probe_features(snap["mu_train"], snap["sigma_train"], kind, seed=seed)
            test = probe_features(snap["mu_test"], snap["sigma_test"], kind, seed=seed + 1)
            records.append({**meta, "kind": kind, **probe_accuracy(train, y_train, test, y_test, **probe_kwargs)})
    return records


def _factor_classifier(name: str, gb_estimators: int, lr_cs: int, seed: int):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic_regression":
        # standardised inputs and enough iterations that lbfgs converges at the weakest penalties too
        return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=lr_cs, cv=3, max_iter=5000))
    return GradientBoostingClassifier(n_estimators=gb_estimators, random_state=seed)


def factor_classification(z_train, y_train, z_test, y_test, factor_names: Sequence[str], *,
                          classifiers: Sequence[str] = FACTOR_CLASSIFIERS, gb_estimators: int = 100, lr_cs: int = 10,
                          seed: int = 0) -> pd.DataFrame:
    """One classifier per factor of variation on latent codes (Bonheme & Grześ 2023, Table 1; their
    ``evaluate_downstream_task``): scikit-learn's ``LogisticRegressionCV`` (``lr_cs`` values of C, 3-fold, on
    standardised codes) and ``GradientBoostingClassifier`` (``gb_estimators`` trees, seeded with ``seed``).

    ``z_*`` are (n, d) codes, ``y_*`` (n, F) integer classes, one column per name of ``factor_names``; a factor
    with a single class in the training set is skipped. Returns one row per (factor, classifier): ``classifier``,
    ``factor``, ``n_classes``, ``train_accuracy``, ``test_accuracy``.
    """
    z_train, z_test = np.asarray(z_train, float), np.asarray(z_test, float)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if y_train.ndim != 2 or y_train.shape[1] != len(factor_names) or y_test.shape[1:] != y_train.shape[1:]:
        raise ValueError(f"y_train and y_test must have one column per factor ({len(factor_names)}), got "
                         f"{y_train.shape} and {y_test.shape}")
    if z_train.shape[0] != y_train.shape[0] or z_test.shape[0] != y_test.shape[0]:
        raise ValueError("z and y must have the same number of rows")
    bad = [c for c in classifiers if c not in FACTOR_CLASSIFIERS]
    if bad:
        raise ValueError(f"classifiers: unknown {bad}; known: {FACTOR_CLASSIFIERS}")
    rows = []
    for j, name in enumerate(factor_names):
        classes = np.unique(y_train[:, j])
        if len(classes) < 2:
            continue
        for clf_name in classifiers:
            clf = _factor_classifier(clf_name, gb_estimators, lr_cs, seed)
            with warnings.catch_warnings():  # scikit-learn's announcements of future defaults
                warnings.simplefilter("ignore", FutureWarning)
                clf.fit(z_train, y_train[:, j])
            rows.append({"classifier": clf_name, "factor": name, "n_classes": int(len(classes)),
                         "train_accuracy": float(clf.score(z_train, y_train[:, j])),
                         "test_accuracy": float(clf.score(z_test, y_test[:, j]))})
    return pd.DataFrame(rows)
