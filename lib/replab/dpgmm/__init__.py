"""Dirichlet-process Gaussian mixtures by collapsed Gibbs sampling, and the information quantities of
Jamroż et al. (2020): relative entropy (Eq. 7) and total correlation (Eq. 10) of the posterior predictive."""
from .estimator import DPGMM
from .information import InformationEstimate, relative_entropy, total_correlation

__all__ = ["DPGMM", "InformationEstimate", "relative_entropy", "total_correlation"]
