"""The live swap's own options, declared once (CLI flags, web forms, validation); the merge options
(``facelab.merge.options.MERGE_OPTIONS``) say how each face is blended, as in ``facelab merge``."""

from __future__ import annotations

from facelab.options import Option

LIVE_OPTIONS: tuple[Option, ...] = (
    Option("smoothing", 0.5, "Steady the face between frames: 0 = off (each frame's own landmarks, shakier), "
           "1 = strongest (a still face is held still; moving faces are followed either way).", min=0.0, max=1.0),
    Option("detect_every", 8, "Run the face detector every N frames (and whenever the face is lost); between "
           "detections each face is tracked from its landmarks in the previous frame, which is much faster.",
           min=1, max=1000),
    Option("landmarks", "one-pass", "How each frame's 68 landmarks are found: one-pass (one look at the face's box: "
           "fast) or two-pass (then the aligned face as is and mirrored, averaged, as `facelab extract` does: "
           "steadier, about 10 ms more a face on a CPU). On the demo clip, smoothed one-pass shakes less than "
           "merge's two-pass alignment (facelab bench live).", choices=("one-pass", "two-pass")),
    Option("max_faces", 1, "Swap at most this many faces per frame, largest first (0: all).", min=0, max=64),
    Option("min_face_size", 40, "Ignore detected faces smaller than this many pixels.", min=0, max=100_000),
    Option("realtime", True, "Read a video file at its own frame rate, as a camera delivers frames, and drop the "
           "frames the swap cannot keep up with; off: swap every frame of the file as fast as possible."),
    Option("queue", 2, "Frames waiting to be swapped at most; a frame that arrives when the queue is full is "
           "dropped (and counted) instead of adding delay.", min=1, max=64),
)
# The options ``LiveSwap`` takes as keywords; the others say how the stream runs (``run_stream``).
SESSION_OPTIONS = ("smoothing", "detect_every", "landmarks", "max_faces", "min_face_size")


def session_args(values: dict) -> dict:
    """``LiveSwap``'s keywords from a dict of every live option's value."""
    return {name: values[name] for name in SESSION_OPTIONS}
