"""Quick96: DeepFaceLab 2's fixed fast model — its settings, its optimizer, and that it trains on real faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facelab.options import validate
from facelab.train import samples
from facelab.train.bench import StepRunner
from facelab.train.loop import to_tensors
from facelab.train.models import MODELS
from facelab.train.models.build import option_specs
from facelab.train.models.quick96 import Quick96
from facelab.train.optimizers import RMSprop
from facelab.train.samples import FaceCache


def test_quick96_is_a_96px_full_face_df_ud_with_nothing_to_choose():
    model = Quick96(validate(Quick96.option_specs, {}))
    assert (model.resolution, model.face_type, model.spec.archi) == (96, "full", "df-ud")
    assert (model.spec.ae_dims, model.spec.e_dims, model.spec.d_dims, model.spec.mask_dims) == (128, 64, 64, 16)
    assert model.learn_mask and model.code_d is not None
    assert not any(part.active for part in model.extra_parts().values())  # no GAN, no true face
    own = {o.name for o in Quick96.option_specs}
    assert own == {"learning_rate"}  # architecture and recipe are fixed; only the trainer's options remain
    run = {o.name: o for o in option_specs("Quick96")}
    assert run["learning_rate"].default == 2e-4 and "batch_size" in run and "archi" not in run


def test_quick96_trains_with_rmsprop_and_lr_dropout(src_faceset, dst_faceset):
    torch.manual_seed(0)
    model = MODELS.get("Quick96")(validate(Quick96.option_specs, {}))
    runner = StepRunner(model, lr=2e-4, swap=False)  # with the model's own optimizer
    opt = runner.optimizer
    assert isinstance(opt, RMSprop) and opt.param_groups[0]["lr_dropout"] == pytest.approx(0.3)
    src, dst = FaceCache.build(src_faceset, "full", 96), FaceCache.build(dst_faceset, "full", 96)
    try:
        arrays = samples.make_batch(src, dst, model.feed_settings({"batch_size": 1, "sort_by_yaw": False,
                                                                  "src_scale_mod": 0}), np.random.default_rng(0))
    finally:
        src.close()
        dst.close()
    batch = to_tensors(arrays, torch.device("cpu"), torch.contiguous_format)
    before = [p.detach().clone() for p in model.net.parameters()]
    totals = runner.run([batch] * 3).losses
    assert totals[-1] < totals[0], totals
    moved = torch.cat([(p.detach() != b).flatten() for p, b in zip(model.net.parameters(), before)]).float().mean()
    assert 0.2 < moved < 0.7  # LR dropout: each step updates ~30 % of the weights (three steps ≈ 66 %)
