"""Sort scores: pure functions, arrays in, numbers (or index arrays) out. No file I/O here.

Images are (H, W, 3) uint8 BGR or (H, W) uint8 grey; landmarks are (68, 2) float (x, y) in the same image's
pixels; masks are (H, W) uint8 with 1 inside the face. Histograms are 1-D float rows that sum to 1.
"""

from __future__ import annotations

import cv2
import numpy as np

# A pixel counts as black (outside the source frame or a letterbox bar) when no channel exceeds this;
# JPEG ringing lifts exact zeros a little, dark hair and shadows stay above it.
BLACK_LEVEL = 6


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 mask, 1 inside the convex hull of the 68 landmarks (the face, eyebrows to chin)."""
    mask = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def sharpness(grey: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the 3×3 Laplacian inside ``mask``: fine detail (pores, lashes, edges) is high-frequency,
    which blur removes first. Border pixels of the mask are left out so the hull's edge adds nothing."""
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    inner = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    values = lap[inner] if inner.any() else lap.ravel()
    return float(values.var())


# Second differences I(p - u) - 2 I(p) + I(p + u) along 0°, 90°, 45° and 135°; diagonal steps are √2 long,
# so those kernels are halved to stay per squared pixel.
_SECOND_DIFFERENCES = [
    np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], np.float32),
    np.array([[0, 1, 0], [0, -2, 0], [0, 1, 0]], np.float32),
    np.array([[1, 0, 0], [0, -2, 0], [0, 0, 1]], np.float32) / 2,
    np.array([[0, 0, 1], [0, -2, 0], [1, 0, 0]], np.float32) / 2,
]


def motion_sharpness(grey: np.ndarray, mask: np.ndarray) -> float:
    """Fine detail along the face's poorest direction: the smallest, over four directions, of the
    variance of the directional second difference inside ``mask``.

    Motion blur smears along one direction and wipes out the detail there while leaving the other
    directions nearly intact, so a smeared face scores low even when its overall sharpness looks fine.
    """
    g = grey.astype(np.float32)
    inner = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    if not inner.any():
        inner = np.ones_like(inner)
    return float(min(cv2.filter2D(g, -1, k)[inner].var() for k in _SECOND_DIFFERENCES))


def colour_histogram(bgr: np.ndarray, bins: int = 64, mask: np.ndarray | None = None) -> np.ndarray:
    """(3 * bins,) float32: the B, G and R histograms side by side, together summing to 1."""
    parts = [cv2.calcHist([bgr], [c], mask, [bins], [0, 256]).ravel() for c in range(3)]
    hist = np.concatenate(parts).astype(np.float32)
    return hist / max(float(hist.sum()), 1e-12)


def grey_histogram(grey: np.ndarray, mask: np.ndarray | None = None, bins: int = 64) -> np.ndarray:
    """(bins,) float32 histogram of grey levels inside ``mask``, summing to 1."""
    hist = cv2.calcHist([grey], [0], mask, [bins], [0, 256]).ravel().astype(np.float32)
    return hist / max(float(hist.sum()), 1e-12)


def hellinger_rows(roots: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """Hellinger distances sqrt(1 - Σ sqrt(p q)) from faces ``rows`` to every face.

    ``roots`` is (N, K) float32, the element-wise square roots of N histograms (each summing to 1).
    Returns (len(rows), N) float32 in [0, 1]; 0 = identical histograms. (OpenCV's HISTCMP_BHATTACHARYYA
    is the same distance for normalised histograms.)
    """
    overlap = roots[rows] @ roots.T
    return np.sqrt(np.clip(1.0 - overlap, 0.0, 1.0))


def similarity_chain(hists: np.ndarray, start: int = 0) -> np.ndarray:
    """Order faces so each is followed by its most similar unvisited face (greedy nearest-neighbour chain).

    ``hists``: (N, K) histograms. Returns a permutation (N,) int starting at ``start``; look-alikes end up
    next to each other, which groups shots, scenes and other people together.
    """
    n = len(hists)
    if n == 0:
        return np.zeros(0, np.int64)
    roots = np.sqrt(np.asarray(hists, np.float32))
    visited = np.zeros(n, bool)
    order = np.empty(n, np.int64)
    current = start
    for i in range(n):
        order[i] = current
        visited[current] = True
        if i == n - 1:
            break
        dist = hellinger_rows(roots, slice(current, current + 1))[0]
        dist[visited] = np.inf
        current = int(np.argmin(dist))
    return order


def dissimilarity(hists: np.ndarray, block: int = 1024) -> np.ndarray:
    """(N,) float: each face's summed Hellinger distance to all others. Low = many look-alikes.

    Computed in blocks of rows so 10,000s of faces need no N×N matrix in memory.
    """
    roots = np.sqrt(np.asarray(hists, np.float32))
    out = np.empty(len(roots), np.float64)
    for lo in range(0, len(roots), block):
        out[lo:lo + block] = hellinger_rows(roots, slice(lo, lo + block)).sum(axis=1, dtype=np.float64)
    return out


def black_fraction(bgr: np.ndarray) -> float:
    """Share of pixels that are black in every channel (cut off by the frame edge or a letterbox bar)."""
    return float((bgr.max(axis=2) <= BLACK_LEVEL).mean())


def brightness(bgr: np.ndarray, mask: np.ndarray) -> float:
    """Mean HSV value (0–255) of the face inside ``mask``."""
    value = bgr.max(axis=2)  # HSV's V is the largest channel
    return float(value[mask.astype(bool)].mean()) if mask.any() else float(value.mean())


def hue(bgr: np.ndarray, mask: np.ndarray) -> float:
    """Circular mean hue of the face in degrees [0, 360), weighted by saturation (grey pixels have no hue).

    A plain mean would put reds at 350° and 10° halfway round the circle at 180°."""
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV_FULL).astype(np.float32)
    inside = mask.astype(bool) if mask.any() else np.ones(mask.shape, bool)
    angle = hsv[..., 0][inside] * (2 * np.pi / 256)
    weight = hsv[..., 1][inside]
    mean = np.arctan2((weight * np.sin(angle)).sum(), (weight * np.cos(angle)).sum())
    return float(np.degrees(mean) % 360.0)


def cluster_by_distance(descriptors: np.ndarray, threshold: float) -> np.ndarray:
    """Group faces whose descriptors lie closer than ``threshold`` (single linkage: connected components).

    ``descriptors``: (N, D) float. Returns (N,) int labels, 0 = the largest group, 1 the next, ...
    With dlib descriptors the same person is ~0.35–0.45 apart and different people > 0.7, so 0.55
    separates them with room on both sides.
    """
    d = np.asarray(descriptors, np.float64)
    sq = (d * d).sum(axis=1)
    group = np.full(len(d), -1, np.int64)
    for seed in range(len(d)):
        if group[seed] >= 0:
            continue
        group[seed] = seed
        frontier = np.array([seed])
        while len(frontier):  # breadth-first over "closer than threshold" links, a whole layer at a time
            dist2 = sq[frontier, None] + sq[None, :] - 2.0 * d[frontier] @ d.T
            reached = ((dist2 < threshold * threshold).any(axis=0)) & (group < 0)
            group[reached] = seed
            frontier = np.nonzero(reached)[0]
    seeds, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    # Largest group first; ties go to the group seen first (lowest seed) so the result is deterministic.
    rank_of_group = np.empty(len(seeds), np.int64)
    rank_of_group[np.lexsort((seeds, -counts))] = np.arange(len(seeds))
    return rank_of_group[inverse]


def yaw_quotas(counts: np.ndarray, total: int) -> np.ndarray:
    """Spread ``total`` picks over bins holding ``counts`` faces as evenly as their contents allow.

    Water-filling: every bin gets the same quota q, capped at what it holds, with q as large as fits;
    leftover picks go one each to the fullest remaining bins. Returns (B,) int quotas summing to
    min(total, counts.sum()).
    """
    counts = np.asarray(counts, np.int64)
    total = int(min(total, counts.sum()))
    q = 0
    while np.minimum(counts, q + 1).sum() <= total and (counts > q).any():
        q += 1
    quotas = np.minimum(counts, q)
    left = total - int(quotas.sum())
    if left > 0:
        spare = np.nonzero(counts > quotas)[0]
        spare = spare[np.argsort(-(counts[spare] - quotas[spare]), kind="stable")][:left]
        quotas[spare] += 1
    return quotas


def select_best(yaw: np.ndarray, pitch: np.ndarray, sharp: np.ndarray, dissim: np.ndarray, count: int,
                yaw_bins: int = 64, candidates_per_pick: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``final`` selection: ``count`` faces covering every head pose, best first within each pose.

    Inputs are (N,) float arrays: yaw and pitch in degrees, sharpness (higher = sharper) and histogram
    dissimilarity (higher = fewer look-alikes). Steps:

    1. cut the yaw range into ``yaw_bins`` equal bins and give each bin a quota (``yaw_quotas``), so
       profiles are kept even when frontal faces outnumber them;
    2. in each bin keep the ``candidates_per_pick`` × quota sharpest faces;
    3. spread the candidates over ``quota`` pitch bins and take faces round-robin across pitch bins,
       within a pitch bin the most dissimilar first (no ten copies of one expression).

    Returns (kept, discarded) index arrays; ``kept`` is ordered by yaw, then by pick order.
    """
    n = len(yaw)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = float(yaw.min()), float(yaw.max())
    bins = max(1, min(yaw_bins, count))
    bin_of = np.minimum(((yaw - lo) / max(hi - lo, 1e-9) * bins).astype(np.int64), bins - 1)
    quotas = yaw_quotas(np.bincount(bin_of, minlength=bins), count)
    kept: list[int] = []
    for b in range(bins):
        if quotas[b] == 0:
            continue
        members = np.nonzero(bin_of == b)[0]
        members = members[np.argsort(-sharp[members], kind="stable")][: candidates_per_pick * quotas[b]]
        kept.extend(_round_robin_by_pitch(members, pitch, dissim, int(quotas[b])))
    kept_arr = np.array(kept, np.int64)
    discarded = np.setdiff1d(np.arange(n), kept_arr)
    return kept_arr, discarded


def _round_robin_by_pitch(members: np.ndarray, pitch: np.ndarray, dissim: np.ndarray, quota: int) -> list[int]:
    p = pitch[members]
    lo, hi = float(p.min()), float(p.max())
    pitch_bin = np.minimum(((p - lo) / max(hi - lo, 1e-9) * quota).astype(np.int64), quota - 1)
    queues = []
    for pb in range(quota):
        group = members[pitch_bin == pb]
        queues.append(list(group[np.argsort(-dissim[group], kind="stable")]))
    picked: list[int] = []
    while len(picked) < quota:
        for queue in queues:
            if queue and len(picked) < quota:
                picked.append(int(queue.pop(0)))
    return picked
