"""Live face swapping: a stream of frames (a video file, a camera, the browser's camera) swapped as it comes."""
