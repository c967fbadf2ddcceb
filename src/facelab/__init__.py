"""facelab: face swapping in video, end to end, labelled as synthetic."""

__version__ = "0.1.0"
