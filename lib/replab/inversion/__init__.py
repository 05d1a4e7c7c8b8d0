"""Inverting supervised representations with conditional PixelCNN++ models (Nash, Kushman & Williams, 2019).

* :mod:`.classifier`: the classifiers whose layers CONV1, CONV2, FC3 and LOGITS are inverted (Section 5.1, 5.2).
* :mod:`.pixelcnn`: the conditional PixelCNN++ inversion model p_θ(x | h) (Appendix A).
* :mod:`.likelihoods`: the 256-way softmax and the discretised logistic mixture over 8-bit pixels.
* :mod:`.baseline`: the MSE up-convolutional decoder of Eq. 3.
* :mod:`.information`: cross-entropies (Eq. 11), the mutual-information bound (Eq. 9) and Table 1's L1 check.
* :mod:`.fit`: their training, through the training engine (:mod:`replab.train`).
* :mod:`.runs`: the study's models as cached runs (coarse images, classifier specs, inversion models per layer).

The three models are registered with :func:`replab.models.register`, so a :class:`~replab.train.TrainConfig` takes
their configurations.
"""
from .. import models as _models
from .baseline import MSEDecoder, MSEDecoderConfig
from .classifier import LAYERS, Classifier, ClassifierConfig, to_float_images
from .pixelcnn import PixelCNNConfig, PixelCNNpp

_models.register(ClassifierConfig, Classifier)
_models.register(PixelCNNConfig, PixelCNNpp)
_models.register(MSEDecoderConfig, MSEDecoder)

from .fit import (accuracy, fit_classifier, fit_layer_inversion, fit_layer_mse, fit_mse_decoder,  # noqa: E402
                  fit_pixelcnn, history)
from .information import (CrossEntropy, cross_entropy, information_bound, ink_centroid,
                          nearest_training_images, position_error, representation_distances, sample_inversions)
from .likelihoods import LogisticMixture, Softmax256, make_likelihood

__all__ = ["LAYERS", "Classifier", "ClassifierConfig", "to_float_images", "PixelCNNConfig", "PixelCNNpp",
           "Softmax256", "LogisticMixture", "make_likelihood", "MSEDecoder", "MSEDecoderConfig", "CrossEntropy",
           "cross_entropy", "information_bound", "sample_inversions", "representation_distances",
           "nearest_training_images", "ink_centroid", "position_error", "fit_classifier",
           "fit_pixelcnn", "fit_mse_decoder", "accuracy", "fit_layer_inversion", "fit_layer_mse", "history"]
