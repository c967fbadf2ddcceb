"""Finding faces in a stream cheaply: a full detection every few frames, and between detections each face's
68 landmarks found again from the box around its landmarks in the previous frame (dlib's shape predictor needs
only a rough box: ~5 ms of CPU for one pass against ~35 ms for RetinaFace on a 640×360 frame, measured on this
project's shared 2-core machine).

A track is lost, and the next frame detects again, when its landmarks jump or change size more than a moving
face does between two frames; a scheduled detection also ends tracks that drifted off a face and starts tracks
for faces that came in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from facelab.extract.detectors import BoxFit, Detection, create_detector
from facelab.extract.landmarks import LandmarkPredictor, refit_box
from facelab.geometry.boxes import box_from_points
from facelab.live.smoothing import FilterState, face_scale

# How a tight box around the 68 points sits around them: exactly.
TIGHT = BoxFit(0.0, 0.0, 1.0, 1.0)
# Between two frames a face moves less than this share of its size, and changes size by less than this ratio;
# more means the predictor lost it (measured on the demo clips: a head turn moves ~5 % of the face a frame).
MAX_JUMP = 0.35
MAX_SIZE_CHANGE = 1.35
# A detection belongs to a track when their centres are closer than this share of the track's face size.
SAME_FACE = 0.5


@dataclass
class Track:
    """One face followed over frames: ``landmarks`` (68, 2) frame pixels as found in the last frame (raw),
    ``smoothed`` the filter's memory, ``index`` the face's number in the stream (0 first)."""

    landmarks: np.ndarray
    index: int
    smoothed: FilterState | None = None


@dataclass
class TrackTimes:
    detect: float = 0.0
    align: float = 0.0


class FaceTracker:
    """Detects every ``detect_every`` frames (or when a track is lost) and tracks in between.

    ``max_faces`` 0 keeps every face, else the largest; ``min_face_size`` drops smaller detections (px);
    ``two_pass``: the extract step's two-pass landmarks (steadier, three times the work) instead of one pass.
    """

    def __init__(self, detector: str = "retinaface", device: str = "cpu", *, detect_every: int = 8,
                 max_faces: int = 1, min_face_size: int = 40, two_pass: bool = False):
        self.detector = create_detector(detector, device)
        self.predictor = LandmarkPredictor()
        self.detect_every, self.max_faces, self.min_face_size = detect_every, max_faces, min_face_size
        self.two_pass = two_pass
        self.tracks: list[Track] = []
        self._since_detect = 0
        self._next_index = 0

    def reset(self) -> None:
        """Forget every track: the next frame detects (a new stream)."""
        self.tracks, self._since_detect, self._next_index = [], 0, 0

    def update(self, frame: np.ndarray) -> tuple[list[Track], TrackTimes]:
        """The tracks of this (H, W, 3) uint8 BGR frame, with their landmarks found in it, and the time spent
        detecting and finding landmarks (seconds)."""
        times = TrackTimes()
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if not self.tracks or self._since_detect >= self.detect_every:
            start = time.perf_counter()
            found = self._select(self.detector.detect(frame))
            times.detect = time.perf_counter() - start
            self._since_detect = 0
            start = time.perf_counter()
            self.tracks = self._matched(gray, found)
        else:
            start = time.perf_counter()
            self.tracks = [t for t in (self._followed(gray, t) for t in self.tracks) if t is not None]
            if not self.tracks:
                self._since_detect = self.detect_every  # lost: detect on the next frame
        self._since_detect += 1
        times.align = time.perf_counter() - start
        return self.tracks, times

    def _select(self, found: list[Detection]) -> list[Detection]:
        found = sorted((d for d in found if d.size >= self.min_face_size),
                       key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]), reverse=True)
        return found[: self.max_faces] if self.max_faces > 0 else found

    def _matched(self, gray: np.ndarray, found: list[Detection]) -> list[Track]:
        """Tracks for the detections: an existing track keeps its number and smoothing when a detection lies on
        its face (followed from its own landmarks, which fit better than a fresh detector box); the rest start."""
        out, free = [], list(self.tracks)
        for det in found:
            centre = np.array([(det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2])
            near = [t for t in free if np.linalg.norm(t.landmarks.mean(0) - centre)
                    < SAME_FACE * face_scale(t.landmarks)]
            followed = self._followed(gray, near[0]) if near else None
            if followed is not None:
                free.remove(near[0])
                out.append(followed)
                continue
            landmarks = self._landmarks(gray, det.box, self.detector.box_fit)
            out.append(Track(landmarks, self._next_index))
            self._next_index += 1
        return out

    def _followed(self, gray: np.ndarray, track: Track) -> Track | None:
        """The track with its landmarks found in this frame from last frame's box; None when it lost the face."""
        before = track.landmarks
        # The same landmark method as after a detection: a switch of method would show as a jump.
        after = self._landmarks(gray, box_from_points(before), TIGHT)
        size_before, size_after = face_scale(before), face_scale(after)
        jump = np.linalg.norm(after.mean(0) - before.mean(0)) / size_before
        if jump > MAX_JUMP or max(size_after / size_before, size_before / size_after) > MAX_SIZE_CHANGE:
            return None
        track.landmarks = after
        return track

    def _landmarks(self, gray: np.ndarray, box: tuple[float, float, float, float], fit: BoxFit) -> np.ndarray:
        if self.two_pass:
            return self.predictor.landmarks(gray, box, fit)
        return self.predictor.predict(gray, refit_box(box, fit))
