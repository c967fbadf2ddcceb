"""`facelab video extract|cut|denoise|assemble`: the video ends of the pipeline."""

from __future__ import annotations

from pathlib import Path

import click

from facelab.cli._common import ProgressBar, ask, interactive, option_flags, workspace_option, yes_option
from facelab.io.denoise import DENOISE_OPTIONS
from facelab.io.frames import list_frames
from facelab.io.video import ASSEMBLE_OPTIONS, CUT_OPTIONS, EXTRACT_OPTIONS
from facelab.workspace import Workspace


# DeepFaceLab's own prompt wording (what its users know), per command; it belongs to the CLI, not to the options.
EXTRACT_WORDING = {"fps": "Enter FPS ( ?:help skip:fullfps ) : ",
                   "ext": "Output image format? ( png/jpg ?:help skip:png ) : ",
                   "jpeg_quality": "JPEG quality ( 1-100 ?:help skip:95 ) : "}
CUT_WORDING = {"from": "From time (skip: 00:00:00.000) : ", "to": "To time (skip: end) : ",
               "audio_track": "Specify audio track id. ( skip:0 ) : ",
               "bitrate": "Bitrate of output file in MB/s ( skip:25 ) : "}
DENOISE_WORDING = {"factor": "Denoise factor? (1-20 ?:help skip:5) : "}
ASSEMBLE_WORDING = {"ext": "Output video format ( mp4/avi/mp4-alpha/mov-alpha ?:help ) : ",
                    "bitrate": "Bitrate of output file in MB/s ( ?:help skip:16 ) : "}


def _pick(options, *names):
    return [o for o in options if o.name in names]


@click.group("video")
def video_group() -> None:
    """Frames out of a video, cut, denoise, and frames back into a video with sound."""


@video_group.command("extract")
@click.argument("side", type=click.Choice(["src", "dst"]))
@workspace_option
@yes_option
@click.option("--overwrite", is_flag=True, help="Replace frames extracted before (asked at a terminal).")
@option_flags(EXTRACT_OPTIONS)
def extract(side: str, workspace: Path, yes: bool, overwrite: bool, **given) -> None:
    """Frames of data_src.* / data_dst.* into data_src/ / data_dst/ as 00001.png … (dst: always every frame)."""
    from facelab.io import video

    ws = Workspace(workspace)
    source = ws.video(side)
    if side == "dst" and given.get("fps") is not None:
        raise click.UsageError("dst frames are always extracted at full fps (merging needs every frame): drop --fps")
    values = ask(_pick(EXTRACT_OPTIONS, "fps", "ext") if side == "src" else _pick(EXTRACT_OPTIONS, "ext"), given, yes,
                 EXTRACT_WORDING)
    if values["ext"] == "jpg":
        values.update(ask(_pick(EXTRACT_OPTIONS, "jpeg_quality"), given, yes, EXTRACT_WORDING))
    folder = ws.frames(side)
    old = list_frames(folder)
    if old and not overwrite and interactive(yes):
        click.confirm(f"{folder} already holds {len(old)} frames. Replace them?", default=False, abort=True)
        overwrite = True
    with ProgressBar() as bar:
        count = video.extract_frames(source, folder, fps=values.get("fps") or None, ext=values["ext"],
                                     jpeg_quality=values.get("jpeg_quality", 95), overwrite=overwrite, progress=bar)
    click.echo(f"Extracted {count} frames of {source.name} into {folder}.")


@video_group.command("cut")
@click.argument("file", type=click.Path(path_type=Path))
@workspace_option
@yes_option
@option_flags(CUT_OPTIONS)
def cut(file: Path, workspace: Path, yes: bool, **given) -> None:
    """Keep a part of FILE in NAME_cut.EXT beside it (the original stays). FILE 'src' or 'dst' means the
    workspace's data_src.* / data_dst.*."""
    from facelab.io import video

    if not file.exists() and str(file) in ("src", "dst"):
        file = Workspace(workspace).video(str(file))
    values = ask(CUT_OPTIONS, given, yes, CUT_WORDING)
    start = video.parse_time(values["from"])
    end = None if values["to"].strip().lower() in ("end", "") else video.parse_time(values["to"])
    with ProgressBar() as bar:
        out = video.cut(file, start, end, audio_track=values["audio_track"], bitrate_mbps=values["bitrate"],
                        progress=bar)
    click.echo(f"Wrote {out}.")


@video_group.command("denoise")
@workspace_option
@yes_option
@option_flags(DENOISE_OPTIONS)
def denoise(workspace: Path, yes: bool, **given) -> None:
    """Denoise the extracted dst frames in place (edge-preserving, in time and space)."""
    from facelab.io.denoise import denoise_frames

    values = ask(DENOISE_OPTIONS, given, yes, DENOISE_WORDING)
    folder = Workspace(workspace).frames("dst")
    with ProgressBar() as bar:
        count = denoise_frames(folder, values["factor"], progress=bar)
    click.echo(f"Denoised {count} frames in {folder}.")


@video_group.command("assemble")
@workspace_option
@yes_option
@option_flags(ASSEMBLE_OPTIONS)
def assemble(workspace: Path, yes: bool, **given) -> None:
    """data_dst/merged/ frames into result.<ext>, with the fps and the sound of data_dst.*."""
    from facelab import provenance
    from facelab.io import video

    values = ask(_pick(ASSEMBLE_OPTIONS, "ext"), given, yes, ASSEMBLE_WORDING)
    if values["ext"] in ("mp4", "avi"):
        values.update(ask(_pick(ASSEMBLE_OPTIONS, "bitrate"), given, yes, ASSEMBLE_WORDING))
    ws = Workspace(workspace)
    out = ws.root / f"result.{values['ext'].split('-')[0]}"
    with ProgressBar() as bar:
        video.assemble(ws.merged, ws.video("dst"), out, kind=values["ext"], bitrate_mbps=values.get("bitrate", 16.0),
                       alpha_dir=ws.merged_mask, metadata=provenance.label_container(step="assemble"), progress=bar)
    click.echo(f"Wrote {out}.")


commands = [video_group]
