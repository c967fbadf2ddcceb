"""SAE training speed on this CPU, next to DeepFaceLab 2's SAEHD trainer measured on the same kind of machine.

Prints, per setting and precision: median and IQR ms per iteration (forward + loss + backward + Adam step on real
demo faces, after warm-up), peak RSS, FLOP per iteration and achieved GFLOP/s against a matmul peak measured in
the same run. Each (setting, precision) runs in its own process so its peak RSS is its own.

    .venv/bin/python benchmarks/bench_train.py                       # both settings, fp32 and bf16, 50 iterations
    .venv/bin/python benchmarks/bench_train.py --settings df64 --amp bf16 --iterations 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from facelab.bench.measure import matmul_peak_gflops
from facelab.io import demo_media
from facelab.options import validate
from facelab.train import bench
from facelab.train.models import MODELS

# DeepFaceLab 2 SAEHD, full face, masked training, CPU only, steady state (numbers from the issue).
# Our SAE's nearest settings: e_ch_dims / d_ch_dims count per colour channel (×3), and their minimum (21 → 63)
# is the nearest to SAEHD's e_dims 32; d_ch_dims 11 → 33 ≈ 32, 21 → 63 ≈ 64; mask_dims is SAEHD's d_mask_dims.
SETTINGS = {
    "df64": {
        "options": {"archi": "df", "resolution": 64, "face_type": "full", "ae_dims": 128, "e_ch_dims": 21,
                    "d_ch_dims": 11, "mask_dims": 16, "learn_mask": True},
        "batch": 8, "dfl_ms": (830, 1400), "dfl_rss_gb": 1.5,
        "dfl": "df, res 64, ae_dims 128, e_dims 32, d_dims 32, mask dims 16, batch 8",
    },
    "liae128": {
        "options": {"archi": "liae", "resolution": 128, "face_type": "full", "ae_dims": 256, "e_ch_dims": 21,
                    "d_ch_dims": 21, "mask_dims": 22, "learn_mask": True},
        "batch": 4, "dfl_ms": (6200, 10700), "dfl_rss_gb": 6.4,
        "dfl": "liae, res 128, ae_dims 256, e_dims 64, d_dims 64, mask dims 22, batch 4",
    },
}


def measure(setting: str, amp: str, iterations: int, warmup: int) -> dict:
    """One setting at one precision in this process: timings, peak RSS, FLOPs."""
    spec = SETTINGS[setting]
    torch.manual_seed(0)
    sae = MODELS.get("SAE")
    model = sae(validate(sae.option_specs, spec["options"]))
    r, n = model.resolution, spec["batch"]
    src, dst = (bench.to_batch_tensors(*bench.demo_faces(demo_media.packaged_file(v), 2 * n, r, model.face_type))
                for v in (demo_media.DEMO_SRC_VIDEO, demo_media.DEMO_DST_VIDEO))
    g = torch.Generator().manual_seed(0)
    batches = [bench.training_batch(src, dst, torch.randperm(2 * n, generator=g)[:n])
               for _ in range(warmup + iterations)]
    flops = model.flops_per_iteration(n, swap=False)
    seconds, totals = bench.train_steps(model, batches, amp=amp, swap=False)
    timing = bench.Timing.of(seconds[warmup:])
    return {"setting": setting, "amp": amp, "batch": n, "median_ms": timing.median_ms, "q1_ms": timing.q1_ms,
            "q3_ms": timing.q3_ms, "iterations": timing.iterations, "peak_rss_mb": bench.peak_rss_mb(),
            "gflop_per_iter": flops / 1e9, "gflops": flops / 1e9 / (timing.median_ms / 1000),
            "first_loss": totals[0], "last_loss": totals[-1],
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def report(row: dict, peaks: dict[str, float]) -> str:
    spec = SETTINGS[row["setting"]]
    peak = peaks["bf16" if row["amp"] == "bf16" else "fp32"]
    dfl_new, dfl_old = spec["dfl_ms"]
    return (f"{row['setting']:8s} {row['amp']:5s} batch {row['batch']}: {row['median_ms']:8.0f} ms/it "
            f"(IQR {row['q1_ms']:.0f}-{row['q3_ms']:.0f}, {row['iterations']} its)  "
            f"peak RSS {row['peak_rss_mb']:6.0f} MiB  "
            f"{row['gflop_per_iter']:.0f} GFLOP/it = {row['gflops']:.0f} GFLOP/s ({100 * row['gflops'] / peak:.0f}% of "
            f"{'bf16' if row['amp'] == 'bf16' else 'fp32'} matmul peak)  vs DeepFaceLab {dfl_new} ms (TF 2.15): "
            f"{dfl_new / row['median_ms']:.2f}x, {dfl_old} ms (TF 2.4): {dfl_old / row['median_ms']:.2f}x, "
            f"DFL RSS {spec['dfl_rss_gb']} GB  loss {row['first_loss']:.2f}->{row['last_loss']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="df64,liae128", help="comma list of: " + ", ".join(SETTINGS))
    parser.add_argument("--amp", default="off,bf16", help="comma list of: off (fp32), bf16")
    parser.add_argument("--iterations", type=int, default=50, help="timed iterations (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "setting:amp": measure in this process, print JSON
    args = parser.parse_args()
    if args.child:
        setting, amp = args.child.split(":")
        print(json.dumps(measure(setting, amp, args.iterations, args.warmup)))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    cpu = torch.device("cpu")
    peaks = {"fp32": matmul_peak_gflops(cpu, torch.float32), "bf16": matmul_peak_gflops(cpu, torch.bfloat16)}
    print(f"matmul peak (2048², best of 1 s): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s",
          flush=True)
    for setting in args.settings.split(","):
        print(f"{setting}: ours = SAE {SETTINGS[setting]['options']}; DeepFaceLab = {SETTINGS[setting]['dfl']}",
              flush=True)
        for amp in args.amp.split(","):
            done = subprocess.run([sys.executable, __file__, "--child", f"{setting}:{amp}", "--iterations",
                                   str(args.iterations), "--warmup", str(args.warmup)],
                                  capture_output=True, text=True, check=True)
            print(report(json.loads(done.stdout.strip().splitlines()[-1]), peaks), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
