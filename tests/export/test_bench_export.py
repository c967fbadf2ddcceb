"""`facelab bench export`: a smoke run of the batch-1 timing on a tiny trained model (numbers are not checked)."""

from __future__ import annotations

import pytest
import torch

from facelab.bench.export import format_report, run_export_bench, thread_counts
from facelab.errors import OptionError


def test_export_bench_times_both_paths_on_the_same_faces(trained, facesets):
    model = trained("SAE")
    before = sorted(p.name for p in model.model_dir.iterdir())
    threads_before = torch.get_num_threads()
    report = run_export_bench(2, model_dir=model.model_dir, aligned=facesets[1])
    assert report["batch"] == 1 and report["max_abs_difference"] <= 2e-3 and "dst face" in report["faces"]
    assert set(report["threads"]) == {str(n) for n in thread_counts()}
    for timing in report["threads"].values():
        for path in ("onnxruntime", "pytorch"):
            assert timing[path]["calls"] == 2 and 0 < timing[path]["p25_ms"] <= timing[path]["median_ms"] <= \
                timing[path]["p75_ms"]
        assert timing["speedup_wall"] > 0 and timing["speedup_cpu"] > 0
    assert len(format_report(report)) == 1 + 3 * len(thread_counts())
    assert torch.get_num_threads() == threads_before  # the bench leaves torch's thread count as it found it
    assert sorted(p.name for p in model.model_dir.iterdir()) == before  # exported to a temp folder, not here
    with pytest.raises(OptionError, match="give its model folder"):
        run_export_bench(1, model_dir=model.dfm)
