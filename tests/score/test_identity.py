"""Identity: dlib descriptor distances on real faces of the two demo people."""

from __future__ import annotations

import numpy as np
import pytest

from facelab.faceset.identity import face_descriptors
from facelab.io.faceimage import list_faces, read_face
from facelab.score.identity import SAME_PERSON_THRESHOLD, identity_scores, person_descriptor, descriptor_distance


def _descriptors(folder):
    faces = [read_face(p) for p in list_faces(folder)]
    return face_descriptors([f[0] for f in faces], [f[1] for f in faces])


@pytest.fixture(scope="module")
def people(tiny):
    return _descriptors(tiny.ws.aligned("src")), _descriptors(tiny.ws.aligned("dst"))


def test_a_face_is_nearest_itself_and_far_from_the_other_person(people):
    woman, man = people
    assert descriptor_distance(man[0], man[0]) == pytest.approx(0.0, abs=1e-6)
    assert descriptor_distance(man[0], man[3]) < SAME_PERSON_THRESHOLD  # same man, another frame
    assert descriptor_distance(woman[0], woman[2]) < SAME_PERSON_THRESHOLD  # same woman, seconds apart
    cross = descriptor_distance(woman[:, None], man[None])  # every woman/man pair
    assert cross.shape == (len(woman), len(man))
    assert cross.min() > 0.6


def test_share_nearer_to_src(people):
    woman, man = people
    src_person, dst_person = person_descriptor(woman), person_descriptor(man)
    unswapped = identity_scores(man, src_person, dst_person)
    assert unswapped.share_nearer_to_src == 0.0
    assert np.all(unswapped.to_dst < SAME_PERSON_THRESHOLD) and np.all(unswapped.to_src > 0.6)
    swapped = identity_scores(woman, src_person, dst_person)
    assert swapped.share_nearer_to_src == 1.0


def test_person_descriptor_needs_faces():
    with pytest.raises(ValueError):
        person_descriptor(np.zeros((0, 128)))
