"""Video steps on real video: extract, cut, denoise, assemble, and the errors bad input gets."""

from __future__ import annotations

import re
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelab.errors import InputError, OptionError, OutputError, VideoError
from facelab.io import video
from facelab.io.denoise import denoise_frames
from facelab.io.frames import list_frames

# --- helpers ---------------------------------------------------------------------------------------------------




def level(i: int) -> int:
    """Grey level of frame ``i`` of a synthetic clip, so a decoded frame tells its number."""
    return 16 + 4 * i


def make_video(path: Path, seconds: float = 2.0, fps: int = 25, size=(320, 180), tones=(440.0,),
               with_video: bool = True) -> Path:
    """A clip whose frame i is flat grey ``level(i)``, with one sine-wave audio track per tone (Hz)."""
    import av

    w, h = size
    rate = 44100
    with av.open(str(path), "w") as out:
        # Every stream is added before the first packet is written (the header is written then).
        vs = out.add_stream("libx264", rate=fps, options={"crf": "1"}) if with_video else None
        audio = [out.add_stream("aac", rate=rate, layout="mono") for _ in tones]
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            for i in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), level(i), np.uint8), format="bgr24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        for tone, stream in zip(tones, audio):
            t = np.arange(round(seconds * rate)) / rate
            wave = (0.5 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            for start in range(0, len(wave), 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, start:start + 1024].copy(), format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    return path


def decode_audio(path: Path, track: int = 0) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as c:
        stream = c.streams.audio[track]
        chunks = [f.to_ndarray().reshape(-1, f.samples)[0] for f in c.decode(stream)]
        return np.concatenate(chunks), stream.codec_context.sample_rate


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def decoded_frames(path: Path, fmt: str = "bgr24") -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(c.streams.video[0])]


def video_tags(path: Path) -> dict[str, str]:
    import av

    with av.open(str(path)) as c:
        return dict(c.metadata)


def nothing_left(folder: Path) -> bool:
    """No frames, no hidden staging folders, no temp files."""
    return not folder.exists() or not [p for p in folder.rglob("*") if p.is_file() or p.name.startswith(".")]


@pytest.fixture(scope="module")
def dst_frames(tmp_path_factory, dst_video) -> Path:
    """The real dst video's 72 frames as PNG, extracted once for the module."""
    folder = tmp_path_factory.mktemp("dst") / "data_dst"
    video.extract_frames(dst_video, folder)
    return folder


@pytest.fixture
def workspace(tmp_path, dst_video) -> Path:
    """A workspace holding the real dst video as data_dst.mp4."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(dst_video, ws / "data_dst.mp4")
    return ws


# --- pure planning ---------------------------------------------------------------------------------------------


def test_time_and_fps_maths():
    assert video.parse_time("00:01:02.500") == 62.5
    assert video.parse_time("1:30") == 90.0
    assert video.parse_time("7.25") == 7.25
    with pytest.raises(OptionError, match="HH:MM:SS"):
        video.parse_time("1h30")
    # 2 s of 25 fps taken at 10 fps: 20 frames, each the first at or after 0.0, 0.1, 0.2 … s.
    kept, wanted = [], 0
    for t in (i / 25 for i in range(50)):
        after = video.fps_keep(t, wanted, 10, tolerance=0.02)
        if after is not None:
            kept.append(t)
            wanted = after
    assert len(kept) == 20 and kept[:4] == [0.0, 0.08, 0.2, 0.28]
    assert video.even_size(641, 359, "yuv420p") == (640, 358)
    assert video.even_size(641, 359, "rgba") == (641, 359)


def test_encoder_plans():
    assert video.assemble_plan("mp4", 16).codec == "libx264" and video.assemble_plan("mp4", 16).bitrate == 16_000_000
    assert video.assemble_plan("avi", 8).format == "avi"
    for kind in ("mp4-alpha", "mov-alpha"):
        assert video.assemble_plan(kind, 16).alpha and video.assemble_plan(kind, 16).bitrate is None
    assert video.cut_plan(".MOV", 25).format == "mov"
    assert video.cut_plan(".webm", 25).audio_codec == "libopus"
    with pytest.raises(OptionError, match="mp4"):
        video.assemble_plan("gif", 16)


# --- probe and extract -----------------------------------------------------------------------------------------


def test_probe_real_videos(src_video, dst_video):
    src = video.probe(src_video)
    assert (src.frames, src.fps, src.width, src.height) == (472, Fraction(24000, 1001), 640, 360)
    assert [a.codec for a in src.audio] == ["aac"]
    dst = video.probe(dst_video)
    assert (dst.frames, dst.fps) == (72, 30) and abs(dst.duration - 2.4) < 1e-6
    assert dst.audio[0].sample_rate == 44100


def test_extract_dst_png_is_every_frame_exactly(dst_frames, dst_video):
    frames = list_frames(dst_frames)
    assert [p.name for p in frames[:2]] == ["00001.png", "00002.png"] and len(frames) == 72
    reference = decoded_frames(dst_video)
    assert len(reference) == 72
    for i in (0, 71):
        assert np.array_equal(cv2.imread(str(frames[i])), reference[i])  # PNG is lossless
    assert not list(dst_frames.glob(".*"))


def test_extract_src_jpg_at_fps_through_cli(run_cli, tmp_path, src_video):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "data_src.mp4").symlink_to(src_video)
    code, _, err = run_cli("video", "extract", "src", "--workspace", str(ws), "--yes", "--fps", "5",
                        "--ext", "jpg", "--jpeg-quality", "90")
    assert code == 0, err
    frames = list_frames(ws / "data_src")
    info = video.probe(src_video)
    assert abs(len(frames) - info.duration * 5) <= 1  # 19.685 s at 5 fps: 98 or 99 frames
    assert {p.suffix for p in frames} == {".jpg"}
    assert cv2.imread(str(frames[0])).shape == (360, 640, 3)


def test_dst_is_always_full_fps(run_cli, workspace):
    code, _, err = run_cli("video", "extract", "dst", "-w", str(workspace), "--yes", "--fps", "5")
    assert code == 2 and "full fps" in err
    code, _, err = run_cli("video", "extract", "dst", "-w", str(workspace), "--yes")
    assert code == 0, err
    assert len(list_frames(workspace / "data_dst")) == video.probe(workspace / "data_dst.mp4").frames


def test_re_extract_never_mixes_old_and_new_frames(run_cli, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    make_video(ws / "data_src.mp4", seconds=1.0)
    args = ["video", "extract", "src", "-w", str(ws), "--yes"]
    assert run_cli(*args, "--ext", "jpg")[0] == 0
    old = list_frames(ws / "data_src")
    (ws / "data_src" / "aligned").mkdir()
    (ws / "data_src" / "aligned" / "keep.jpg").write_bytes(b"a face")
    code, _, err = run_cli(*args, "--fps", "10")
    assert code == 2 and "already holds 25 frames" in err and "--overwrite" in err
    assert list_frames(ws / "data_src") == old
    assert run_cli(*args, "--fps", "10", "--overwrite")[0] == 0
    new = list_frames(ws / "data_src")
    assert len(new) == 10 and {p.suffix for p in new} == {".png"}  # the 25 jpg frames are gone
    assert (ws / "data_src" / "aligned" / "keep.jpg").exists()
    assert not list((ws / "data_src").glob(".*"))


def test_prompts_at_a_terminal_show_defaults(capsys, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from facelab.cli import _common, cli

    ws = tmp_path / "ws"
    ws.mkdir()
    make_video(ws / "data_src.mp4", seconds=1.0)
    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)
    result = CliRunner().invoke(cli, ["video", "extract", "src", "-w", str(ws)], input="?\n10\n\n")
    assert result.exit_code == 0, result.output
    assert "Enter FPS ( ?:help skip:fullfps ) : " in result.output
    assert "0 = every frame" in result.output  # '?' shows the help
    assert len(list_frames(ws / "data_src")) == 10


# --- cut -------------------------------------------------------------------------------------------------------


def test_cut_keeps_span_and_chosen_audio_track(run_cli, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", seconds=2.0, fps=25, tones=(440.0, 1000.0))
    before = clip.read_bytes()
    code, _, err = run_cli("video", "cut", str(clip), "--yes", "--from", "00:00:00.520",
                        "--to", "00:00:01.480", "--audio-track", "1", "--bitrate", "5")
    assert code == 0, err
    out = tmp_path / "clip_cut.mp4"
    assert clip.read_bytes() == before
    frames = decoded_frames(out)
    assert abs(len(frames) - 24) <= 1  # 0.96 s at 25 fps
    first = round((frames[0].mean() - level(0)) / 4)
    assert abs(first - 13) <= 1  # 0.52 s is frame 13
    info = video.probe(out)
    assert len(info.audio) == 1
    samples, rate = decode_audio(out)
    assert abs(peak_hz(samples, rate) - 1000.0) < 20
    assert abs(info.audio[0].duration - 0.96) < 0.05


def test_cut_keeps_container_and_resamples_audio_it_cannot_hold(tmp_path):
    from facelab.io.audio import encoder_rate, sample_span

    assert encoder_rate("libopus", 44100) == 48000 and encoder_rate("aac", 44100) == 44100
    assert sample_span(t0=1.0, samples=1000, rate=1000, start=1.25, end=1.5) == (250, 500)
    assert sample_span(t0=0.0, samples=100, rate=1000, start=0.5, end=1.0) == (100, 100)
    clip = make_video(tmp_path / "clip.mp4", seconds=1.0, size=(160, 96))
    webm = video.cut(clip, 0.2, 0.8, out_path=tmp_path / "clip_cut.webm")  # Opus: 48 kHz only
    info = video.probe(webm)
    assert info.codec == "vp9" and abs(info.frames - 15) <= 1
    samples, rate = decode_audio(webm)
    assert rate == 48000 and abs(len(samples) / rate - 0.6) < 0.05 and abs(peak_hz(samples, rate) - 440) < 20


def test_cut_rejects_bad_span_and_track(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(OptionError, match="--from before --to"):
        video.cut(clip, 0.8, 0.2)
    with pytest.raises(OptionError, match="no track 3"):
        video.cut(clip, 0.0, 0.5, audio_track=3)
    assert not (tmp_path / "clip_cut.mp4").exists()


# --- denoise ---------------------------------------------------------------------------------------------------


def test_denoise_removes_noise_keeps_size_and_count(run_cli, tmp_path, dst_frames):
    ws = tmp_path / "ws"
    folder = ws / "data_dst"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    clean = [cv2.imread(str(p)) for p in list_frames(dst_frames)[:6]]
    for i, image in enumerate(clean, 1):
        noisy = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:05d}.png"), noisy)
    noisy = [cv2.imread(str(p)) for p in list_frames(folder)]
    code, _, err = run_cli("video", "denoise", "-w", str(ws), "--yes", "--factor", "8")
    assert code == 0, err
    out = [cv2.imread(str(p)) for p in list_frames(folder)]
    assert len(out) == 6 and all(o.shape == (360, 640, 3) for o in out)

    def rmse(a, b):
        return float(np.sqrt(np.mean((a.astype(float) - b.astype(float)) ** 2)))

    gains = [rmse(o, c) / rmse(n, c) for n, o, c in zip(noisy, out, clean)]
    assert max(gains) < 0.75 and np.mean(gains) < 0.6, gains  # the first and last frame have one neighbour
    # Edges survive: the strongest gradients of the clean frame are still there.
    grad = lambda im: cv2.Sobel(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_32F, 1, 0)
    edges = np.abs(grad(clean[0])) > 100
    assert np.abs(grad(out[0]))[edges].mean() > 0.8 * np.abs(grad(clean[0]))[edges].mean()
    assert not list(folder.glob(".*"))


def test_denoise_needs_frames(tmp_path):
    with pytest.raises(InputError, match="extract dst"):
        denoise_frames(tmp_path)


# --- assemble --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_assemble_has_dst_frames_fps_and_sound(run_cli, workspace, dst_frames, dst_video, ext):
    shutil.copytree(dst_frames, workspace / "data_dst" / "merged")
    code, _, err = run_cli("video", "assemble", "-w", str(workspace), "--yes", "--ext", ext)
    assert code == 0, err
    result = workspace / f"result.{ext}"
    info, dst = video.probe(result), video.probe(dst_video)
    assert (info.frames, info.fps, info.width, info.height) == (72, dst.fps, 640, 360)
    back = decoded_frames(result)
    assert len(back) == 72
    for i in (0, 71):  # the picture survives: colours, order, no swap of channels
        assert cv2.PSNR(back[i], cv2.imread(str(list_frames(dst_frames)[i]))) > 30
    assert len(info.audio) == 1 and abs(info.audio[0].duration - dst.audio[0].duration) < 0.05
    samples, _ = decode_audio(result)
    assert np.abs(samples).max() > 0.01  # real sound, not silence
    from facelab import provenance

    # One tag every container keeps (AVI's RIFF INFO drops "description"): the sentence, then the JSON record.
    assert video_tags(result)["comment"].splitlines()[0] == provenance.LABEL_TEXT
    label = provenance.read_label(result)
    assert (label["synthetic"], label["step"], label["label"]) == (True, "assemble", provenance.LABEL_TEXT)
    code, out, _ = run_cli("verify", str(result))  # the frames carry no watermark: only the label can say it
    assert code == 0 and f'metadata label: found — "{provenance.LABEL_TEXT}"' in out
    assert [p.name for p in workspace.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind,suffix", [("mp4-alpha", "mp4"), ("mov-alpha", "mov")])
@pytest.mark.parametrize("alpha_from", ["rgba", "mask"])
def test_assemble_alpha_variants_keep_alpha(tmp_path, kind, suffix, alpha_from):
    dst = make_video(tmp_path / "data_dst.mp4", seconds=0.4, size=(64, 48))
    frames, masks = tmp_path / "merged", tmp_path / "merged_mask"
    frames.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(1)
    written = []
    for i in range(1, 11):
        bgra = rng.integers(0, 256, (48, 64, 4), dtype=np.uint8)
        written.append(bgra)
        if alpha_from == "rgba":
            cv2.imwrite(str(frames / f"{i:05d}.png"), bgra)
        else:
            cv2.imwrite(str(frames / f"{i:05d}.png"), bgra[..., :3])
            cv2.imwrite(str(masks / f"{i:05d}.png"), bgra[..., 3])
    out = video.assemble(frames, dst, tmp_path / f"result.{suffix}", kind=kind, alpha_dir=masks)
    back = decoded_frames(out, "bgra")
    assert len(back) == 10
    for got, want in zip(back, written):
        assert np.array_equal(got, want)  # lossless, alpha included
    assert len(video.probe(out).audio) == 1


def test_assemble_alpha_needs_alpha(tmp_path, dst_frames, dst_video):
    with pytest.raises(InputError, match="no alpha channel"):
        video.assemble(dst_frames, dst_video, tmp_path / "result.mov", kind="mov-alpha")
    assert list(tmp_path.iterdir()) == []


# --- bad input -------------------------------------------------------------------------------------------------


def _bad_video(kind: str, folder: Path, src_video: Path) -> Path:
    path = folder / "data_src.mp4"
    if kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "truncated":
        path.write_bytes(src_video.read_bytes()[:800_000])
    elif kind == "audio only":
        make_video(path, seconds=0.5, with_video=False)
    return path


@pytest.mark.parametrize("kind,message", [
    ("missing", "no such video file"),
    ("text", "cannot be read as a video"),
    ("truncated", "damaged after frame|ends after"),
    ("audio only", "has no video stream"),
])
def test_bad_video_gets_one_line_error_and_leaves_nothing(run_cli, tmp_path, src_video, kind, message):
    ws = tmp_path / "ws"
    ws.mkdir()
    path = _bad_video(kind, ws, src_video)
    # The truncated file is whole up to ~10 s: cut past that, extract all of it.
    code, _, err = run_cli("video", "cut", str(path), "--yes", "--from", "12", "--to", "13")
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "data_src.mp4" in lines[0] and re.search(message, lines[0]) and " — " in lines[0]
    assert "Traceback" not in err
    if kind != "missing":
        code, _, err = run_cli("video", "extract", "src", "-w", str(ws), "--yes", "--ext", "jpg")
        assert code == 2 and re.search(message, err) and "Traceback" not in err
    assert nothing_left(ws / "data_src")
    assert [p for p in ws.rglob("*") if not p.is_dir()] == ([] if kind == "missing" else [path])


def test_unwritable_output_folder(run_cli, tmp_path, dst_video, dst_frames):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(dst_video, ws / "data_dst.mp4")
    (ws / "data_dst").write_text("a file where the frames folder should be")
    code, _, err = run_cli("video", "extract", "dst", "-w", str(ws), "--yes")
    assert code == 2 and "cannot write frames here" in err and "data_dst" in err and "Traceback" not in err
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    with pytest.raises(OutputError, match="blocked"):
        video.assemble(dst_frames, dst_video, blocked / "result.mp4")
    with pytest.raises(VideoError):
        video.probe(blocked)
