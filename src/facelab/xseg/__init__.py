"""XSeg: a face segmenter the user trains on the mask editor's polygons (or, with no labels, on landmark hulls
with synthetic occluders), then applies to whole facesets and uses in merge (``seg-prd``, ``seg-dst``).

Modules: ``net`` the network and its options, ``augment`` the pure image maths of the training samples,
``data`` the faces and their targets, ``trainer`` the loop with resume, ``segmenter`` a saved net ready to
predict, ``apply`` masks in face metadata, ``masks`` the merge masks (NumPy only, no torch at import).
"""
