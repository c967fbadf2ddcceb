"""A model on disk: options and history as JSON, weights and optimizer state as safetensors — never pickle.

```
MODEL_DIR/<MODEL>_save_<generation>/        the last complete save, these five files:
    <MODEL>_options.json                    every option (architecture ones fixed from then on)
    <MODEL>_weights.safetensors             model parameters and buffers
    <MODEL>_optimizer.safetensors           Adam moments and the torch RNG state
    <MODEL>_optimizer.json                  Adam hyper-parameters and the sample RNG state
    <MODEL>_history.json                    iteration and loss history
MODEL_DIR/autobackups/<MODEL>_<iteration>/  copies of the five files
```

``<MODEL>`` is the model's name (``SAE``), or ``<GPU>_<name>`` (``1_SAE``) for a model trained on a GPU the user
picked by index (``--device cuda:1``): one folder then holds a model per GPU (``saved_name``).

A save is one atomic step: the five files go into a hidden temp folder, are fsynced with it, and one rename
makes it the next generation; only then are older generations removed. A kill at any moment leaves the last
complete save in place (and maybe a temp folder, removed at the next start). A folder holding the five files
flat — models saved before generations, and the autobackups — loads as it is; its first save converts it.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from facelab.errors import ModelError, OutputError
from facelab.io.files import fsync_folder

log = logging.getLogger(__name__)

FORMAT = "facelab-model-1"
BACKUPS_KEPT = 5
_FIX_RESTORE = ("copy a folder from autobackups/ into an empty --model-dir and train from there, "
                "or start a new model in an empty --model-dir")
_PARTS = ("options.json", "weights.safetensors", "optimizer.safetensors", "optimizer.json", "history.json")


@dataclass(frozen=True)
class ModelFiles:
    """The files of model ``name`` in ``folder``: those of its last complete save."""

    folder: Path
    name: str

    @property
    def saved(self) -> Path:
        """The folder holding the last complete save: the newest generation, else ``folder`` itself (flat)."""
        found = generations(self.folder, self.name)
        return found[-1][1] if found else Path(self.folder)

    def _file(self, suffix: str) -> Path:
        return self.saved / f"{self.name}_{suffix}"

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
        saved = self.saved  # one look at the folder, so all five come from the same save
        return [saved / f"{self.name}_{part}" for part in _PARTS]

    def exists(self) -> bool:
        return self.options.is_file()

    def pinned(self) -> "ModelFiles":
        """These files as of now: later saves (by a trainer running meanwhile) do not change what it names."""
        return ModelFiles(self.saved, self.name)


def generations(folder: Path, name: str) -> list[tuple[int, Path]]:
    """(generation, folder) of every complete save of ``name`` in ``folder``, oldest first."""
    pattern = re.compile(re.escape(name) + r"_save_(\d{6,})")
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    # A symlink is never a save facelab made (and removing old saves must not follow one out of the folder).
    found = [(int(m.group(1)), p) for p in entries
             if (m := pattern.fullmatch(p.name)) and p.is_dir() and not p.is_symlink()]
    return sorted(found)


@dataclass
class TrainState:
    """What a resume needs besides weights and optimizer: iteration, per-iteration losses, RNG states."""

    iteration: int = 0
    loss_src: list[float] = field(default_factory=list)
    loss_dst: list[float] = field(default_factory=list)
    pretrained: bool = False
    sample_rng: dict | None = None
    torch_rng: torch.Tensor | None = None


_GPU_PREFIX = re.compile(r"(\d{1,3})_([A-Za-z]\w*)")


def saved_name(model: str, gpu_index: int | None = None) -> str:
    """The name the files of ``model`` carry: ``<gpu_index>_<model>`` when trained on a GPU picked by index, else
    the model's name (the default choice of device: files as before)."""
    return model if gpu_index is None else f"{int(gpu_index)}_{model}"


def parse_saved_name(name: str) -> tuple[str, int | None]:
    """(model name, GPU index or None) of a saved name: ``"1_SAE"`` → ``("SAE", 1)``, ``"SAE"`` → ``("SAE", None)``.
    Model names start with a letter, so a leading number is always a GPU index."""
    m = _GPU_PREFIX.fullmatch(name)
    return (m.group(2), int(m.group(1))) if m else (name, None)


def resolve_model(folder: Path, name: str | None) -> str:
    """The saved name in ``folder`` that ``name`` asks for: a saved name (``1_SAE``) as it is, a model name (``SAE``)
    when one model of it is saved (with or without a GPU prefix), None when only one model is saved there.
    ModelError when none fits or several do (naming them)."""
    found = find_models(folder)
    if name in found:
        return name
    fits = found if name is None else [n for n in found if parse_saved_name(n)[0] == name]
    if len(fits) == 1:
        return fits[0]
    if not fits:
        held = f" (it holds {', '.join(found)})" if found else ""
        if name is None:
            raise ModelError("no trained model in this folder", path=folder, fix="train one with `facelab train`")
        raise ModelError(f"no {name} model in this folder{held}", path=folder,
                         fix=f"train it with `facelab train --model {name}` or check --model-dir")
    raise ModelError(f"several {'models' if name is None else name + ' models'} ({', '.join(fits)}) in this "
                     "folder", path=folder, fix=f"choose one with --model ({', '.join(fits)})")


def find_models(folder: Path) -> list[str]:
    """Names of the models saved in ``folder`` (those with an options file, flat or in a generation folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = {p.name[: -len("_options.json")] for p in folder.glob("*_options.json")}
    saved = {p.name.rsplit("_save_", 1)[0] for p in folder.glob("*_save_[0-9]*")}
    return sorted(names | {name for name in saved if ModelFiles(folder, name).exists()})


def read_json(path: Path) -> Any:
    """A JSON file of a model, refused (ModelError naming it) when missing, corrupt, or holding NaN/Infinity."""
    try:
        return json.loads(path.read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise ModelError("file is missing", path=path, fix=_FIX_RESTORE) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ModelError(f"corrupt JSON ({str(err)[:200]})", path=path, fix=_FIX_RESTORE) from None


def load_options(files: ModelFiles) -> dict[str, Any]:
    """The saved options: plain names mapped to finite numbers, strings, booleans or null. Their ranges are
    checked by the caller against the model's Option declarations (``train.options.resume_options``)."""
    path = files.options
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("options"), dict):
        raise ModelError("not a facelab model options file", path=path, fix=_FIX_RESTORE)
    for key, value in data["options"].items():
        if not key.isidentifier():
            raise ModelError(f"option name {key[:60]!r} is not a plain name", path=path, fix=_FIX_RESTORE)
        finite = isinstance(value, float) and math.isfinite(value)
        if not (value is None or isinstance(value, (str, int, bool)) or finite):
            raise ModelError(f"option {key[:60]!r} holds {str(value)[:40]}, not a finite number, text, "
                             "true/false or null", path=path, fix=_FIX_RESTORE)
    return data["options"]


def save(files: ModelFiles, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
         options: dict[str, Any], state: TrainState) -> None:
    """Write the five files as the next generation in one atomic step, then remove older saves.

    A full disk raises OutputError saying the last complete save is kept (the partial one is removed).
    """
    folder, name = Path(files.folder), files.name
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(files)
    found = generations(folder, name)
    target = folder / f"{name}_save_{(found[-1][0] + 1 if found else 1):06d}"
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        tmp.mkdir()
        _write_save(ModelFiles(tmp, name), model, optimizer, options, state)
        os.rename(tmp, target)  # the one step that makes the save
        fsync_folder(folder)
    except Exception as err:  # a kill runs no handler at all: the next start removes the temp folder
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            raise OutputError(f"the disk is full: the save at iteration {state.iteration} was not written; "
                              f"{_kept(files)}", path=folder, fix="free disk space, then train again to resume"
                              ) from None
        raise
    _remove_older_saves(files, target)
    log.info("saved %s at iteration %d", target, state.iteration)


def remove_leftovers(files: ModelFiles) -> list[Path]:
    """Remove what killed saves of this model left behind: facelab's own temp names only (temp folders of
    saves, temp files of older saves and of previews). Returns what was removed."""
    removed = []
    for folder in (Path(files.folder), Path(files.folder) / "preview_history"):
        pattern = _leftover_pattern(files.name)
        for path in (p for p in _entries(folder) if pattern.fullmatch(p.name)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temp files of interrupted saves in %s", len(removed), files.folder)
    return removed


def load_weights(files: ModelFiles, model: torch.nn.Module, device: torch.device | str = "cpu") -> int:
    """Load the weights into ``model``; returns the iteration they were saved at."""
    path = files.weights
    iteration = _iteration_of(path)
    try:
        missing, unexpected = load_model(model, str(path), strict=False, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"weights are truncated or corrupt ({err})", path=path, fix=_FIX_RESTORE) from None
    except RuntimeError as err:
        raise ModelError(f"weights do not fit the model's options ({str(err).splitlines()[0]})", path=path,
                         fix="check the options file belongs to these weights") from None
    if missing or unexpected:
        raise ModelError(f"weights do not fit the model (missing {sorted(missing)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]})", path=path, fix="check the options file belongs to these weights")
    return iteration


def load_state(files: ModelFiles, optimizer: torch.optim.Optimizer | None) -> TrainState:
    """Iteration, history and RNG states, and the optimizer state when ``optimizer`` is given.

    Raises ModelError when a file is missing, corrupt, or from another iteration than the weights.
    Called when a trainer starts on a saved model, so it also removes temp files of killed saves.
    """
    remove_leftovers(files)
    files = files.pinned()
    history, opt_json = read_json(files.history), read_json(files.optimizer_json)
    if not isinstance(opt_json, dict):
        raise ModelError("not a facelab optimizer file", path=files.optimizer_json, fix=_FIX_RESTORE)
    state = _history_state(history, files.history)
    state.sample_rng = opt_json.get("sample_rng")
    for path, it in ((files.weights, _iteration_of(files.weights)), (files.optimizer, _iteration_of(files.optimizer)),
                     (files.optimizer_json, opt_json.get("iteration"))):
        if it != state.iteration:
            raise ModelError(f"saved at iteration {it} but the history is at {state.iteration} "
                             "(files of different saves, or a save interrupted before facelab saved atomically)",
                             path=path, fix=_FIX_RESTORE)
    try:
        tensors = load_file(str(files.optimizer))
    except (SafetensorError, OSError) as err:
        raise ModelError(f"optimizer state is truncated or corrupt ({err})", path=files.optimizer,
                         fix=_FIX_RESTORE) from None
    state.torch_rng = tensors.pop("rng.torch", None)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(_join_optimizer(tensors, opt_json))
        except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as err:
            raise ModelError(f"optimizer state does not fit the model ({err})", path=files.optimizer,
                             fix=_FIX_RESTORE) from None
    return state


def autobackup(files: ModelFiles, iteration: int, keep: int = BACKUPS_KEPT) -> Path:
    """Copy the saved files to ``autobackups/<MODEL>_<iteration>/`` (via a temp folder), keeping the newest ``keep``."""
    root = files.folder / "autobackups"
    target = root / f"{files.name}_{iteration:08d}"
    tmp = root / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for path in files.all():
            shutil.copy2(path, tmp / path.name)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno in _DISK_FULL:
            raise OutputError(f"the disk is full: no autobackup at iteration {iteration}; the model's save is "
                              "complete", path=root, fix="free disk space, or set --autobackup-hours 0") from None
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    # Only facelab's own backups of this model are rotated, oldest first.
    for old in sorted(root.glob(f"{files.name}_" + "[0-9]" * 8))[:-keep]:
        shutil.rmtree(old)
    return target


# -- internals ---------------------------------------------------------------------------------------------

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _write_save(files: ModelFiles, model, optimizer, options: dict[str, Any], state: TrainState) -> None:
    """The five files into ``files.folder`` (a new temp folder), each fsynced, then the folder itself.

    safetensors writes its files 0600; they get the mode the JSON files got from open() (0666 less the umask).
    """
    meta = {"format": FORMAT, "model": files.name, "iteration": str(state.iteration)}
    opt_tensors, opt_json = _split_optimizer(optimizer)
    if state.torch_rng is not None:
        opt_tensors["rng.torch"] = state.torch_rng
    history = {"format": FORMAT, "iteration": state.iteration, "pretrained": state.pretrained,
               "loss_src": [round(v, 6) for v in state.loss_src], "loss_dst": [round(v, 6) for v in state.loss_dst]}
    _write_json(files.options, {"format": FORMAT, "model": files.name, "options": options})
    _write_json(files.optimizer_json, {**opt_json, "iteration": state.iteration, "sample_rng": state.sample_rng})
    _write_json(files.history, history)
    save_model(model, str(files.weights), metadata=meta)
    save_file(opt_tensors, str(files.optimizer), metadata=meta)
    mode = files.options.stat().st_mode & 0o777
    for path in (files.weights, files.optimizer):
        os.chmod(path, mode)
        _fsync(path)
    fsync_folder(files.folder)


def _remove_older_saves(files: ModelFiles, newest: Path) -> None:
    """After a complete save: older generations and flat files of the layout before generations go."""
    for _, path in generations(files.folder, files.name):
        if path != newest:
            shutil.rmtree(path, ignore_errors=True)
    for part in _PARTS:
        (Path(files.folder) / f"{files.name}_{part}").unlink(missing_ok=True)


def _kept(files: ModelFiles) -> str:
    """What a failed save leaves to resume from, in words."""
    try:
        return f"the last complete save (iteration {int(read_json(files.history)['iteration'])}) is kept"
    except (ModelError, KeyError, TypeError, ValueError):
        return "no complete save is kept"


def _leftover_pattern(name: str) -> re.Pattern:
    """Temp names facelab gives: ``.<MODEL>_save_<gen>.<pid>.tmp`` folders, and ``atomic_path``'s
    ``.<stem>.<8 random chars><suffix>`` files of this model's files, previews and preview history."""
    n = re.escape(name)
    stems = rf"{n}_(?:options|weights|optimizer|history|preview|loss|\d{{8}})"
    return re.compile(rf"\.{n}_save_\d+\.\d+\.tmp|\.{stems}\.[a-z0-9_]{{8}}\.(?:json|safetensors|png)")


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _history_state(history: Any, path: Path) -> TrainState:
    """The TrainState of a history file: a non-negative iteration and finite losses."""
    try:
        if not isinstance(history, dict):
            raise TypeError("not an object")
        state = TrainState(int(history["iteration"]), [float(v) for v in history["loss_src"]],
                           [float(v) for v in history["loss_dst"]], bool(history.get("pretrained", False)))
        if state.iteration < 0 or not all(math.isfinite(v) for v in state.loss_src + state.loss_dst):
            raise ValueError("negative iteration or non-finite loss")
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise ModelError(f"corrupt history ({err})", path=path, fix=_FIX_RESTORE) from None
    return state


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


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
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=1, allow_nan=False))
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
