"""The model zoo: VAEs and classifiers, each with a configuration dataclass and :func:`build`.

``build(config)`` returns a fresh model for any configuration below; every model exposes
``representations(x) -> {name: tensor}`` with stable layer names (see :mod:`replab.models.vae`).
"""
from __future__ import annotations

from .classifiers import DlibClassifier, DlibClassifierConfig, VGGClassifier, VGGConfig, vgg_layout
from .conv64 import Conv64Config, Conv64VAE
from .fc import FCConfig, FCVAE
from .layers import layer_module, prepare_transfer, reset_layers
from .mlp import MLPConfig, MLPVAE
from .vae import VAE, VAEOutput, reparameterize
from .wae_celeba import WAECelebAConfig, WAECelebAVAE

__all__ = ["build", "is_vae_config", "VAE", "VAEOutput", "reparameterize", "Conv64Config", "Conv64VAE",
           "FCConfig", "FCVAE", "MLPConfig", "MLPVAE", "WAECelebAConfig", "WAECelebAVAE", "DlibClassifierConfig",
           "DlibClassifier", "VGGConfig", "VGGClassifier", "vgg_layout", "MODELS", "layer_module", "reset_layers",
           "prepare_transfer"]

MODELS = {Conv64Config: Conv64VAE, FCConfig: FCVAE, MLPConfig: MLPVAE, WAECelebAConfig: WAECelebAVAE,
          DlibClassifierConfig: DlibClassifier, VGGConfig: VGGClassifier}


def build(config):
    """A freshly initialised model for ``config`` (any configuration dataclass in :data:`MODELS`)."""
    cls = MODELS.get(type(config))
    if cls is None:
        raise ValueError(f"config: no model for {type(config).__name__}; expected one of "
                         f"{[c.__name__ for c in MODELS]}")
    return cls(config)


def is_vae_config(config) -> bool:
    """True when ``config`` builds a VAE (as opposed to a classifier)."""
    return type(config) in MODELS and issubclass(MODELS[type(config)], VAE)
