"""Prompts take the seed's short answers: y/n for yes-no questions, h/f (and mf/wf) for face types."""

from __future__ import annotations

import builtins

import pytest

from facelab.cli import _common
from facelab.extract.options import EXTRACT_OPTIONS
from facelab.train.models.sae import OPTIONS as SAE_OPTIONS
from facelab.train.models.saehd import OPTIONS as SAEHD_OPTIONS


def _option(options, name):
    return next(o for o in options if o.name == name)


@pytest.fixture
def answer(monkeypatch, capsys):
    """``answer(option, "typed", ...)``: the value ``ask`` returns at a terminal when the user types those lines
    in turn (a refused answer prints why and asks again)."""
    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)

    def run(option, *typed):
        lines = iter(typed)
        monkeypatch.setattr(builtins, "input", lambda text="": next(lines))
        value = _common.ask([option], {}, yes=False)[option.name]
        assert next(lines, None) is None, "the prompt stopped before taking every answer"
        return value

    return run


@pytest.mark.parametrize("typed,value", [("y", True), ("n", False), ("Y", True), ("yes", True), ("no", False)])
def test_yes_no_questions_take_y_and_n(answer, typed, value):
    assert answer(_option(EXTRACT_OPTIONS, "rotate_retry"), typed) is value
    assert answer(_option(EXTRACT_OPTIONS, "debug"), typed) is value  # an option without a default


@pytest.mark.parametrize("options", [SAE_OPTIONS, SAEHD_OPTIONS, EXTRACT_OPTIONS], ids=["sae", "saehd", "extract"])
@pytest.mark.parametrize("typed,value", [("h", "half"), ("f", "full"), ("F", "full"), ("half", "half"),
                                         ("", "full")])
def test_face_type_takes_h_and_f(answer, options, typed, value):
    assert answer(_option(options, "face_type"), typed) == value


@pytest.mark.parametrize("typed,value", [("mf", "mid-full"), ("wf", "whole-face"), ("head", "head")])
def test_face_type_takes_the_seed_short_names_of_the_wider_types(answer, typed, value):
    assert answer(_option(SAEHD_OPTIONS, "face_type"), typed) == value


def test_a_wrong_answer_is_explained_and_asked_again(answer, capsys):
    assert answer(_option(SAE_OPTIONS, "face_type"), "x", "mf", "h") == "half"  # sae has no mid-full
    assert answer(_option(EXTRACT_OPTIONS, "rotate_retry"), "maybe", "y") is True
    shown = capsys.readouterr().out
    assert "'x'" in shown and "one of half, full" in shown and "'maybe'" in shown


def test_yes_takes_defaults_without_asking(monkeypatch):
    monkeypatch.setattr(builtins, "input", lambda text="": pytest.fail("prompted under --yes"))
    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)
    values = _common.ask([_option(SAE_OPTIONS, "face_type"), _option(EXTRACT_OPTIONS, "rotate_retry")], {}, yes=True)
    assert values == {"face_type": "full", "rotate_retry": False}


def test_prompts_ask_in_the_options_words_or_the_clis_own(monkeypatch):
    """The generated prompt names the option by its ``prompt``; a command's ``wording`` (the seed's question,
    kept in cli/) replaces the whole text."""
    from facelab.cli.extract import WORDING
    from facelab.merge.options import MERGE_OPTIONS

    asked = []
    monkeypatch.setattr(_common, "interactive", lambda yes: not yes)
    monkeypatch.setattr(builtins, "input", lambda text="": asked.append(text) or "")
    debug, blur = _option(EXTRACT_OPTIONS, "debug"), _option(MERGE_OPTIONS, "blur")
    assert _common.ask([debug, blur], {}, yes=False, wording=WORDING) == {"debug": None, "blur": 0}
    assert asked == [WORDING["debug"], "Blur mask (default 0, ?:help): "]
    _common.ask([debug], {}, yes=False)
    assert asked[-1] == "Write aligned_debug images (default none, ?:help): "
