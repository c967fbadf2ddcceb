"""Face-swap models, one file each, found by name in ``MODELS`` ("H64", "H128", "DF", "LIAEF128", "SAE")."""

from facelab.registry import Registry

MODELS: Registry[type] = Registry("model")

# Importing a model file registers it.
from facelab.train.models import df, h64, h128, liaef128, sae  # noqa: E402,F401

__all__ = ["MODELS"]
