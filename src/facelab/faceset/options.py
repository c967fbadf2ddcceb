"""Options of the faceset steps, declared once (light: the CLI imports this without OpenCV)."""

from __future__ import annotations

from facelab.options import Option

SORT_OPTIONS = [
    Option("final_count", 2000, "How many faces `final` keeps (the rest go to the trash folder).", min=1,
           prompt="Number of faces to keep"),
    Option("identity_threshold", 0.55, "`identity`: faces whose dlib descriptors are closer than this are the "
           "same person (same ≈ 0.4, different ≈ 0.8).", min=0.2, max=1.0, prompt="Same-person distance"),
]

# Which SORT_OPTIONS each sort method reads; the others are neither asked for nor shown.
METHOD_OPTIONS = {"final": ["final_count"], "identity": ["identity_threshold"]}

JPEG_QUALITY = Option("quality", 95, "JPEG quality of the converted faces.", min=1, max=100, prompt="JPEG quality")
