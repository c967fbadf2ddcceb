"""`facelab merge` asks the seed's numbered questions and takes the numbers as well as the names."""

from __future__ import annotations

import builtins

from facelab.cli import _common
from facelab.merge.options import MERGE_OPTIONS


def test_merge_prompts_offer_numbers_and_take_them(monkeypatch):
    asked: list[str] = []
    answers = iter(["2", "", "dst"])  # mode by number, mask by default, then colour transfer wrongly by a mask name

    def answer(text: str) -> str:
        asked.append(text)
        return next(answers, "idt-m")

    monkeypatch.setattr(builtins, "input", answer)
    monkeypatch.setattr(_common, "interactive", lambda yes: True)
    wanted = [o for o in MERGE_OPTIONS if o.name in ("mode", "mask", "colour_transfer")]
    values = _common.ask(wanted, {}, yes=False)
    assert values == {"mode": "hist-match", "mask": "auto", "colour_transfer": "idt-m"}
    assert asked[0].startswith("Choose mode: (1) overlay, (2) hist-match, (3) hist-match-bw, (4) seamless (default), "
                               "(5) raw-rgb")
    assert asked[1].startswith("Mask mode: (1) learned, (2) dst, ")
    assert len(asked) == 4  # the wrong answer "dst" was asked again
