"""The model zoo: VAEs and classifiers, each with a configuration dataclass and :func:`build`.

``build(config)`` returns a fresh model for any configuration below, or one registered with :func:`register` (the
inversion models of :mod:`replab.inversion`); the zoo's models expose ``representations(x) -> {name: tensor}``
with stable layer names (see :mod:`replab.models.vae`).
"""
from __future__ import annotations

import dataclasses

from torch import nn

from .classifiers import DlibClassifier, DlibClassifierConfig, VGGClassifier, VGGConfig, vgg_layout
from .conv64 import Conv64Config, Conv64VAE
from .encoding import encode, sample_codes
from .fc import FCConfig, FCVAE
from .layers import layer_module, prepare_transfer, reset_layers
from .mlp import MLPConfig, MLPVAE
from .vae import VAE, VAEOutput, reparameterize
from .wae_celeba import WAECelebAConfig, WAECelebAVAE

__all__ = ["build", "is_vae_config", "VAE", "VAEOutput", "reparameterize", "Conv64Config", "Conv64VAE",
           "FCConfig", "FCVAE", "MLPConfig", "MLPVAE", "WAECelebAConfig", "WAECelebAVAE", "DlibClassifierConfig",
           "DlibClassifier", "VGGConfig", "VGGClassifier", "vgg_layout", "MODELS", "layer_module", "reset_layers",
           "prepare_transfer", "register", "encode", "sample_codes"]

MODELS = {Conv64Config: Conv64VAE, FCConfig: FCVAE, MLPConfig: MLPVAE, WAECelebAConfig: WAECelebAVAE,
          DlibClassifierConfig: DlibClassifier, VGGConfig: VGGClassifier}


def register(config_cls: type, model_cls: type) -> None:
    """Make ``model_cls(config)`` the model of configurations of ``config_cls`` (a dataclass), so that
    :func:`build` and the training engine (:class:`replab.train.TrainConfig`) accept them. Registering the same
    pair again does nothing; another model for a registered configuration class is refused."""
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise ValueError(f"config_cls: expected a dataclass type, got {config_cls!r}")
    if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
        raise ValueError(f"model_cls: expected a torch.nn.Module subclass, got {model_cls!r}")
    known = MODELS.get(config_cls)
    if known is not None and known is not model_cls:
        raise ValueError(f"config_cls: {config_cls.__name__} already builds {known.__name__}, not "
                         f"{model_cls.__name__}")
    MODELS[config_cls] = model_cls


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
