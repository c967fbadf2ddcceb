"""Face-swap models found by name in ``MODELS``: every model file of this package registers its own.

A registered model is a ``SwapModel`` class: ``cls.option_specs`` declares its options, ``cls(options)`` builds
it. ``build.py`` builds one from a run's options and reads a saved model's options.
"""

from facelab.registry import Registry

MODELS: Registry[type] = Registry("model")


def _import_model_files() -> None:
    """Import every module of this package: a model file registers its models, so a new model is one new file.
    Users see the models in --model and the prompts in the order they registered."""
    import importlib
    import pkgutil

    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{module}")


_import_model_files()

__all__ = ["MODELS"]
