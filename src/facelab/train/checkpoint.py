"""A model on disk: options and history as JSON, weights and optimizer state as safetensors — never pickle.

```
MODEL_DIR/<MODEL>_options.json            every option (architecture ones fixed from then on)
MODEL_DIR/<MODEL>_weights.safetensors     model parameters and buffers
MODEL_DIR/<MODEL>_optimizer.safetensors   Adam moments and the torch RNG state
MODEL_DIR/<MODEL>_optimizer.json          Adam hyper-parameters and the sample RNG state
MODEL_DIR/<MODEL>_history.json            iteration and loss history
MODEL_DIR/autobackups/<MODEL>_<iteration>/  copies of the five files
```

A save writes every file to a temp name first and only then renames them, so a kill at any moment leaves
either the old or the new file under each name; each file records its iteration, and loading refuses a mix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from facelab.errors import ModelError
from facelab.io.files import atomic_path

log = logging.getLogger(__name__)

FORMAT = "facelab-model-1"
BACKUPS_KEPT = 5
_FIX_RESTORE = "restore the files from autobackups/, or start a new model in an empty --model-dir"


@dataclass(frozen=True)
class ModelFiles:
    """The files of model ``name`` in ``folder``."""

    folder: Path
    name: str

    def _file(self, suffix: str) -> Path:
        return self.folder / f"{self.name}_{suffix}"

    @property
    def options(self) -> Path:
        return self._file("options.json")

    @property
    def weights(self) -> Path:
        return self._file("weights.safetensors")

    @property
    def optimizer(self) -> Path:
        return self._file("optimizer.safetensors")

    @property
    def optimizer_json(self) -> Path:
        return self._file("optimizer.json")

    @property
    def history(self) -> Path:
        return self._file("history.json")

    def all(self) -> list[Path]:
        return [self.options, self.weights, self.optimizer, self.optimizer_json, self.history]

    def exists(self) -> bool:
        return self.options.is_file()


@dataclass
class TrainState:
    """What a resume needs besides weights and optimizer: iteration, per-iteration losses, RNG states."""

    iteration: int = 0
    loss_src: list[float] = field(default_factory=list)
    loss_dst: list[float] = field(default_factory=list)
    pretrained: bool = False
    sample_rng: dict | None = None
    torch_rng: torch.Tensor | None = None


def find_models(folder: Path) -> list[str]:
    """Names of the models saved in ``folder`` (those with an options file)."""
    if not Path(folder).is_dir():
        return []
    return sorted(p.name[: -len("_options.json")] for p in Path(folder).glob("*_options.json"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError("file is missing", path=path, fix=_FIX_RESTORE) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"corrupt JSON ({err})", path=path, fix=_FIX_RESTORE) from None


def load_options(files: ModelFiles) -> dict[str, Any]:
    data = read_json(files.options)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("options"), dict):
        raise ModelError("not a facelab model options file", path=files.options, fix=_FIX_RESTORE)
    return data["options"]


def save(files: ModelFiles, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
         options: dict[str, Any], state: TrainState) -> None:
    """Write all five files atomically (all temp files first, then the renames)."""
    meta = {"format": FORMAT, "model": files.name, "iteration": str(state.iteration)}
    opt_tensors, opt_json = _split_optimizer(optimizer)
    if state.torch_rng is not None:
        opt_tensors["rng.torch"] = state.torch_rng
    history = {"format": FORMAT, "iteration": state.iteration, "pretrained": state.pretrained,
               "loss_src": [round(v, 6) for v in state.loss_src], "loss_dst": [round(v, 6) for v in state.loss_dst]}
    with contextlib.ExitStack() as stack:
        tmp = {p: stack.enter_context(atomic_path(p)) for p in files.all()}
        _write_json(tmp[files.options], {"format": FORMAT, "model": files.name, "options": options})
        save_model(model, str(tmp[files.weights]), metadata=meta)
        save_file(opt_tensors, str(tmp[files.optimizer]), metadata=meta)
        _write_json(tmp[files.optimizer_json], {**opt_json, "iteration": state.iteration, "sample_rng": state.sample_rng})
        _write_json(tmp[files.history], history)
        for path in tmp.values():
            _fsync(path)
    log.info("saved %s at iteration %d", files.folder / files.name, state.iteration)


def load_weights(files: ModelFiles, model: torch.nn.Module, device: torch.device | str = "cpu") -> int:
    """Load the weights into ``model``; returns the iteration they were saved at."""
    iteration = _iteration_of(files.weights)
    try:
        missing, unexpected = load_model(model, str(files.weights), strict=False, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"weights are truncated or corrupt ({err})", path=files.weights, fix=_FIX_RESTORE) from None
    except RuntimeError as err:
        raise ModelError(f"weights do not fit the model's options ({str(err).splitlines()[0]})", path=files.weights,
                         fix="check the options file belongs to these weights") from None
    if missing or unexpected:
        raise ModelError(f"weights do not fit the model (missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})", path=files.weights,
                         fix="check the options file belongs to these weights")
    return iteration


def load_state(files: ModelFiles, optimizer: torch.optim.Optimizer | None) -> TrainState:
    """Iteration, history and RNG states, and the optimizer state when ``optimizer`` is given.

    Raises ModelError when a file is missing, corrupt, or from another iteration than the weights.
    """
    history = read_json(files.history)
    opt_json = read_json(files.optimizer_json)
    try:
        state = TrainState(int(history["iteration"]), [float(v) for v in history["loss_src"]],
                           [float(v) for v in history["loss_dst"]], bool(history.get("pretrained", False)),
                           opt_json.get("sample_rng"))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"corrupt history ({err})", path=files.history, fix=_FIX_RESTORE) from None
    for path, it in ((files.weights, _iteration_of(files.weights)), (files.optimizer, _iteration_of(files.optimizer)),
                     (files.optimizer_json, opt_json.get("iteration"))):
        if it != state.iteration:
            raise ModelError(f"saved at iteration {it} but the history is at {state.iteration} "
                             "(a save was interrupted by a crash)", path=path, fix=_FIX_RESTORE)
    try:
        tensors = load_file(str(files.optimizer))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"optimizer state is truncated or corrupt ({err})", path=files.optimizer,
                         fix=_FIX_RESTORE) from None
    state.torch_rng = tensors.pop("rng.torch", None)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(_join_optimizer(tensors, opt_json))
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise ModelError(f"optimizer state does not fit the model ({err})", path=files.optimizer,
                             fix=_FIX_RESTORE) from None
    return state


def autobackup(files: ModelFiles, iteration: int, keep: int = BACKUPS_KEPT) -> Path:
    """Copy the saved files to ``autobackups/<MODEL>_<iteration>/`` (via a temp folder), keeping the newest ``keep``."""
    root = files.folder / "autobackups"
    target = root / f"{files.name}_{iteration:08d}"
    tmp = root / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in files.all():
        shutil.copy2(path, tmp / path.name)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    # Only facelab's own backups of this model are rotated, oldest first.
    for old in sorted(root.glob(f"{files.name}_" + "[0-9]" * 8))[:-keep]:
        shutil.rmtree(old)
    return target


# -- internals ---------------------------------------------------------------------------------------------


def _iteration_of(path: Path) -> int:
    """The iteration recorded in a safetensors file's header (also checks the file is whole)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            header = json.loads(f.read(n)) if 0 < n < size else None
        if not isinstance(header, dict):
            raise ValueError("no header")
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end != size:
            raise ValueError(f"{size} bytes, the header describes {8 + n + end}")
        meta = header.get("__metadata__") or {}
        if meta.get("format") != FORMAT:
            raise ValueError("not a facelab model file")
        return int(meta["iteration"])
    except FileNotFoundError:
        raise ModelError("file is missing", path=path, fix=_FIX_RESTORE) from None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise ModelError(f"file is truncated or corrupt ({err})", path=path, fix=_FIX_RESTORE) from None


def _split_optimizer(optimizer: torch.optim.Optimizer | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state dict → (tensors for safetensors, JSON-able rest)."""
    if optimizer is None:
        return {}, {"param_groups": [], "scalars": {}}
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, per_param in sd["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], opt_json: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for name, value in opt_json.get("scalars", {}).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in opt_json["param_groups"]]
    return {"state": state, "param_groups": groups}


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1))


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
