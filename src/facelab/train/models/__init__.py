"""Face-swap models found by name in ``MODELS`` ("H64", "H128", "DF", "LIAEF128", "SAE", "SAEHD",
"Quick96").

A registered model is a ``SwapModel`` class: ``cls.option_specs`` declares its options, ``cls(options)`` builds
it. ``build.py`` builds one from a run's options and reads a saved model's options.
"""

from facelab.registry import Registry

MODELS: Registry[type] = Registry("model")

# Importing a model file registers it.
# Their order is the order users see in --model and the prompts.
from facelab.train.models import classic, sae, saehd, quick96  # noqa: E402,F401,I001

__all__ = ["MODELS"]
