"""Compatibility: FCN-32s now lives in :mod:`tinyseg.models.fcn32s` (with FCN-16s, FCN-8s, DeepLab).

``from tinyseg.model import FCN32s, FCN32sConfig`` keeps working, as do checkpoints written
before the models package (their config has no ``"name"``: they load as FCN-32s).
"""
from .models.base import predict_probabilities
from .models.fcn32s import UPSAMPLE_FACTOR, FCN32s, FCN32sConfig
from .models.vgg import VGG16_BLOCKS

FC_CHANNELS = 4096

__all__ = ["FCN32s", "FCN32sConfig", "predict_probabilities", "VGG16_BLOCKS", "FC_CHANNELS",
           "UPSAMPLE_FACTOR"]
