"""Every command works on the workspace `-w` names and, with `--yes`, never prompts (issue 15, CLI consistency);
`--face-type` flags take the seed's one-letter answers as its prompts do."""

from __future__ import annotations

import builtins
import json

import cv2
import pytest

from facelab.io.faceimage import list_faces, read_meta
from facelab.workspace import create

# What each command needs besides -w and --yes to run on an empty workspace. Left out: `demo` (it runs the whole
# pipeline) and `bench` (its own test below).
ARGS = {
    "extract": ["src"], "faceset info": ["00001_0.jpg"], "faceset recover-names": [], "faceset debug-landmarks": [],
    "faceset png2jpg": [], "faceset import-dfl": [], "merge": [], "score": ["--device", "cpu"],
    "sort": ["--by", "blur"], "train": [], "ui": [], "verify": [], "video extract": ["src"], "video cut": ["src"],
    "video denoise": [], "video assemble": [], "workspace create": [], "workspace clear": [], "xseg train": [],
    "xseg apply": [], "xseg remove": [], "xseg fetch": [], "export": [], "live": [],
}


@pytest.fixture
def no_prompt(monkeypatch):
    """A terminal (so a prompt would be shown) whose input fails the test: --yes must take every default."""
    from facelab.cli import _common

    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)
    monkeypatch.setattr(builtins, "input", lambda text="": pytest.fail(f"prompted under --yes: {text!r}"))


@pytest.mark.parametrize("command", sorted(ARGS))
def test_every_command_works_in_the_workspace_w_names_without_prompting(run_cli, no_prompt, tmp_path, monkeypatch,
                                                                       command):
    workspace = tmp_path / "my workspace"
    if command != "ui":  # ui on an existing workspace would serve until stopped; on a missing one it says so
        create(workspace)
    monkeypatch.chdir(tmp_path)  # no ./workspace here: a command ignoring -w would name or make that one
    result = run_cli(*command.split(), *ARGS[command], "-w", str(workspace), "--yes")
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) <= 1, result
    assert str(workspace) in result.out + result.err, result  # it worked on (or refused) the workspace -w named
    assert not (tmp_path / "workspace").exists()


def test_bench_writes_its_results_into_the_workspace_w_names(run_cli, tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    monkeypatch.chdir(tmp_path)
    result = run_cli("bench", "extract", "--quick", "--device", "cpu", "-w", str(workspace), "--yes")
    assert result.code == 0, result
    report = json.loads((workspace / "bench.json").read_text())
    assert [row["bench"] for row in report["rows"]] == ["extract"] and report["quick"] is True
    assert not (tmp_path / "bench.json").exists()  # the default without -w: the current folder


def test_extract_face_type_flag_takes_the_seed_letters(run_cli, tmp_path, single_face_jpg):
    workspace = create(tmp_path / "ws").root
    frame = workspace / "data_src" / "00001.png"
    cv2.imwrite(str(frame), cv2.imread(str(single_face_jpg)))
    for letter, face_type in (("h", "half"), ("F", "full")):
        result = run_cli("extract", "src", "-w", str(workspace), "--yes", "--device", "cpu", "--face-type", letter,
                         "--image-size", "64")
        assert result.code == 0, result
        faces = list_faces(workspace / "data_src" / "aligned")
        assert len(faces) == 1 and read_meta(faces[0]).face_type == face_type
    wrong = run_cli("extract", "src", "-w", str(workspace), "--yes", "--face-type", "x")
    assert wrong.code == 2 and "'x' is not one of" in wrong.err and "half" in wrong.err


def test_train_face_type_flag_takes_the_seed_letters(run_cli, tmp_path):
    workspace = create(tmp_path / "ws").root
    wrong = run_cli("train", "-w", str(workspace), "--yes", "--model", "SAE", "--face-type", "x")
    assert wrong.code == 2 and "--face-type got 'x'" in wrong.err
    # 'h' passes the option check: training stops only at the missing faces, after the options are taken.
    half = run_cli("train", "-w", str(workspace), "--yes", "--model", "SAE", "--face-type", "h")
    assert half.code == 2 and "no aligned faces" in half.err and "face-type" not in half.err


def test_a_numbered_choice_flag_takes_the_number_its_prompt_offers():
    import click
    from click.testing import CliRunner

    from facelab.cli._common import ask, option_flags
    from facelab.merge.options import MERGE_OPTIONS

    mode = next(o for o in MERGE_OPTIONS if o.name == "mode")

    @click.command()
    @option_flags([mode])
    def show(**given):
        click.echo(ask([mode], given, yes=True)["mode"])

    assert CliRunner().invoke(show, ["--mode", "2"]).output.strip() == mode.choices[1]
    assert CliRunner().invoke(show, ["--mode", "hist-match"]).output.strip() == "hist-match"
    refused = CliRunner().invoke(show, ["--mode", str(len(mode.choices) + 1)])
    assert refused.exit_code == 2 and "is not one of" in refused.output

