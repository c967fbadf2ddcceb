"""Carry one audio stream of an input video into an output video, a packet at a time, in step with the video
frames being written (so the muxer never buffers a whole track: memory stays flat in video length).

Times are seconds of output: input time minus the input video stream's start (``origin``) minus the kept
window's start.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

logger = logging.getLogger(__name__)


def copies(out: Any, stream: Any) -> Any | None:
    """An output stream copying ``stream``'s codec, or None when the output container cannot hold it."""
    try:
        return out.add_stream_from_template(stream)
    except ValueError:
        return None


def encoder_rate(codec: str, rate: int) -> int:
    """``rate`` when ``codec`` can encode it, else the lowest rate it can that is at least ``rate`` (Opus: 48 kHz)."""
    import av

    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    higher = [r for r in rates if r >= rate]
    return min(higher) if higher else max(rates)


def sample_span(t0: float, samples: int, rate: int, start: float, end: float) -> tuple[int, int]:
    """Which samples ``[first, last)`` of a block starting at ``t0`` seconds fall inside ``[start, end)``."""
    first = min(samples, max(0, round((start - t0) * rate)))
    last = min(samples, round((end - t0) * rate))
    return first, max(first, last)


class AudioTrack:
    """One audio stream of an open input ``container``, written to ``out`` inside ``window`` = (start, end) s.

    Packets are copied when ``out`` takes the codec (packets overlapping the window are kept whole); otherwise,
    or with ``reencode=True``, they are decoded, trimmed sample-exact and encoded with ``fallback_codec``.
    """

    def __init__(self, container: Any, stream: Any, out: Any, fallback_codec: str, origin: float,
                 window: tuple[float, float], reencode: bool = False):
        self._container = container
        self._packets = container.demux(stream)
        self._in = stream
        self._origin = origin
        self._start, self._end = window
        self._copy = None if reencode else copies(out, stream)
        if self._copy is None:
            ctx = stream.codec_context
            rate = encoder_rate(fallback_codec, ctx.sample_rate)
            # The encoder resamples to its rate; timestamps stay in input samples (time base 1/input rate).
            self._out = out.add_stream(fallback_codec, rate=rate, layout=ctx.layout.name)
            self._samples = 0
        self._next: Any = None
        self._exhausted = False

    def mux_until(self, out: Any, seconds: float) -> None:
        """Mux packets that start before ``seconds`` of output time (the video written so far)."""
        while True:
            packet = self._peek()
            if packet is None or self._time(packet) - self._start > seconds:
                return
            self._next = None
            for o in self._convert(packet):
                out.mux(o)

    def finish(self, out: Any) -> None:
        """Mux the rest of the window and flush the encoder."""
        self.mux_until(out, float("inf"))
        if self._copy is None:
            for frame in self._in.codec_context.decode(None):
                for o in self._encode(frame):
                    out.mux(o)
            out.mux(self._out.encode(None))

    def close(self) -> None:
        """Close the input (also after an error)."""
        self._container.close()

    def _peek(self) -> Any:
        while self._next is None and not self._exhausted:
            packet = next(self._packets, None)
            if packet is None:
                self._exhausted = True
            elif packet.dts is not None and packet.pts is not None:  # skip the demuxer's empty flush packets
                self._next = packet
        return self._next

    def _time(self, packet: Any) -> float:
        return float(packet.pts * packet.time_base) - self._origin

    def _convert(self, packet: Any) -> list[Any]:
        t = self._time(packet)
        if self._copy is None:
            return [p for frame in self._in.codec_context.decode(packet) for p in self._encode(frame)]
        t_end = t + float((packet.duration or 0) * packet.time_base)
        if t_end <= self._start or t >= self._end:
            return []
        shift = round((self._origin + self._start) / packet.time_base)
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = self._copy
        return [packet]

    def _encode(self, frame: Any) -> list[Any]:
        import av

        if frame.pts is None:
            return []
        rate = frame.sample_rate
        first, last = sample_span(float(frame.pts * frame.time_base) - self._origin, frame.samples, rate,
                                  self._start, self._end)
        if last == first:
            return []
        if first or last < frame.samples:
            array = frame.to_ndarray()
            # Planar audio is (channels, samples); packed is (1, samples × channels).
            step = 1 if frame.format.is_planar else len(frame.layout.channels)
            kept = av.AudioFrame.from_ndarray(array[:, first * step:last * step].copy(), format=frame.format.name,
                                              layout=frame.layout.name)
            kept.sample_rate = rate
            frame = kept
        frame.pts = self._samples
        frame.time_base = Fraction(1, rate)
        self._samples += frame.samples
        return self._out.encode(frame)
