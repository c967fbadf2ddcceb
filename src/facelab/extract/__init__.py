"""Face extraction: find every face in the frames, place 68 landmarks, align, and save faces with metadata."""

from facelab.extract.extractor import Extractor, extract_faces
from facelab.extract.runner import ExtractReport, extract_folder, extract_video, frames_to_revisit

__all__ = ["ExtractReport", "Extractor", "extract_faces", "extract_folder", "extract_video", "frames_to_revisit"]
