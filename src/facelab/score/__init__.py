"""How good is a swap? Identity, pose, expression, flicker and reconstruction numbers for a merged workspace.

``facelab.score.runner.score_workspace`` is the library call; the maths lives in one small module per measure.
"""
