"""Dirichlet-process Gaussian mixtures by collapsed Gibbs sampling, and the information quantities of
Jamroż et al. (2020): relative entropy (Eq. 7) and total correlation (Eq. 10) of the posterior predictive."""
from .chains import GibbsChains
from .estimator import DPGMM
from .information import InformationEstimate, relative_entropy, total_correlation

__all__ = ["DPGMM", "GibbsChains", "InformationEstimate", "relative_entropy", "total_correlation"]
