"""Per-factor classifiers on latent codes (replab.probes.factor_classification), against codes whose classes are
known to be separable (or not at all)."""
import numpy as np
import pytest

from replab.probes import factor_classification


def test_separable_factors_are_classified_and_a_constant_factor_is_skipped(rng):
    y = np.stack([np.zeros(120, int), rng.integers(0, 3, 120), rng.integers(0, 4, 120)], axis=1)
    z = np.concatenate([np.eye(3)[y[:, 1]], np.eye(4)[y[:, 2]]], axis=1) + 0.01 * rng.normal(size=(120, 7))
    table = factor_classification(z[:80], y[:80], z[80:], y[80:], ("color", "shape", "pos"), gb_estimators=5,
                                  lr_cs=2)
    assert list(table.columns) == ["classifier", "factor", "n_classes", "train_accuracy", "test_accuracy"]
    assert list(table["factor"]) == ["shape", "shape", "pos", "pos"]  # 2 factors × 2 classifiers
    assert list(table["classifier"]) == ["logistic_regression", "gradient_boosting"] * 2
    assert list(table["n_classes"]) == [3, 3, 4, 4]
    assert (table["test_accuracy"] == 1.0).all()


def test_codes_independent_of_the_classes_score_near_chance(rng):
    y = rng.integers(0, 2, (400, 1))
    table = factor_classification(rng.normal(size=(300, 5)), y[:300], rng.normal(size=(100, 5)), y[300:],
                                  ("coin",), gb_estimators=5, lr_cs=2)
    # 100 fair coin flips: accuracy within 0.5 ± 0.2 with probability above 0.9999
    assert (abs(table["test_accuracy"] - 0.5) < 0.2).all()


def test_bad_shapes_and_classifiers_raise(rng):
    z, y = rng.normal(size=(20, 3)), rng.integers(0, 2, (20, 3))
    with pytest.raises(ValueError, match="one column per factor"):
        factor_classification(z, y[:, :2], z, y[:, :2], ("a", "b", "c"))
    with pytest.raises(ValueError, match="same number of rows"):
        factor_classification(z[:10], y, z, y, ("a", "b", "c"))
    with pytest.raises(ValueError, match="classifiers: unknown"):
        factor_classification(z, y, z, y, ("a", "b", "c"), classifiers=("svm",))
