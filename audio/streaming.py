"""Streaming transcription: VAD endpointing plus Whisper partials and finals.

:class:`StreamingTranscriber` is fed audio chunks on the caller's thread (VAD
runs there: ~0.3 ms per 32 ms window) and transcribes on one worker thread, so
feeding never waits on the model:

- while an utterance is active, a *partial* transcript of the audio so far is
  started every ``partial_interval_ms`` of audio (at most one in flight);
- at end of utterance, a *final* transcript. Because the end is only declared
  after ``silence_ms`` of silence, a partial started during that silence has
  usually heard all the speech already; with ``reuse_partial`` it becomes the
  final, so the final is ready when the endpoint fires instead of one model
  call later (transcription overlapped with the wait for silence) — whether
  that partial is still running or was emitted already (its text is then the
  final's, at once).

Early endpointing (``early_silence_ms`` > 0): a pause of ``early_silence_ms``
ends the utterance before ``silence_ms`` when a partial that heard all the
speech reads as a finished request (:func:`sounds_finished`: Whisper ends a
sentence it heard end with ". ? !"); that partial is the final. To have such a
partial early, one is started as soon as the pause outlasts ``tail_ms`` (64 ms,
two VAD windows: enough for Whisper to hear the last word whole), whatever
``partial_interval_ms`` says, and none is started earlier in the pause (it could
not have heard it all, and would hold Whisper when that one is due; measured in
``rtagent bench voice``: end of speech -> endpoint p50 224 ms, against 336 ms
with the VAD's 150 ms post-roll as the tail and partials on the interval; word
error rate the same). A pause inside a request that
Whisper punctuates as finished ends the utterance there (the rest is a new one).

Results come back, in order, from ``feed``/``poll``/``finish`` as
:class:`audio.stt.Transcript` (``final`` False or True) between the VAD events.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from audio.errors import AudioError
from audio.sources import SAMPLE_RATE_HZ, AudioChunk
from audio.stt import SpeechToText, Transcript
from audio.vad import SpeechEnd, StreamingVad, VadEvent

__all__ = ["StreamEvent", "StreamingOptions", "StreamingTranscriber", "sounds_finished"]

StreamEvent = VadEvent | Transcript


@dataclass(frozen=True)
class StreamingOptions:
    """partial_interval_ms: audio between partial transcripts (0 = no partials).
    min_partial_ms: no partial until the utterance has this much audio.
    reuse_partial: use a partial that heard all the speech as the final.
    early_silence_ms: end the utterance after this much silence when the partial that
        heard it all sounds finished (0 = off: always wait for the VAD's silence_ms).
    tail_ms: silence after the last speech window that a partial must have heard to have
        heard all the speech (the final's own audio keeps the VAD's post-roll).
    """

    partial_interval_ms: float = 300.0
    min_partial_ms: float = 400.0
    reuse_partial: bool = True
    early_silence_ms: float = 0.0
    tail_ms: float = 64.0

    def __post_init__(self) -> None:
        if not 0 <= self.partial_interval_ms <= 10_000:
            raise AudioError(f"expected partial_interval_ms in 0..10000, got "
                             f"{self.partial_interval_ms}")
        if not 0 <= self.min_partial_ms <= 10_000:
            raise AudioError(f"expected min_partial_ms in 0..10000, got {self.min_partial_ms}")
        if not 0 <= self.early_silence_ms <= 10_000:
            raise AudioError(f"expected early_silence_ms in 0..10000, got {self.early_silence_ms}")
        if not 0 <= self.tail_ms <= 1000:
            raise AudioError(f"expected tail_ms in 0..1000, got {self.tail_ms}")
        if self.early_silence_ms and not self.reuse_partial:
            raise AudioError("early_silence_ms needs reuse_partial (the partial becomes the final)")


def sounds_finished(text: str) -> bool:
    """A transcript that reads as a whole request: two words or more, ending in ". ? !"
    ("..." is Whisper's mark for speech that trailed off)."""
    t = text.strip()
    return len(t.split()) >= 2 and t[-1:] in ".?!" and not t.endswith("...")


@dataclass
class _Job:
    utterance: int
    final: bool
    covered: int  # media sample up to which the audio was heard
    future: Future[Transcript]
    end_t_ns: int


class StreamingTranscriber:
    """VAD + STT over a live chunk stream; see the module docstring."""

    def __init__(self, stt: SpeechToText, vad: StreamingVad, options: StreamingOptions | None = None,
                 *, now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.stt = stt
        self.vad = vad
        self.options = options or StreamingOptions()
        self._now_ns = now_ns
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt")
        self._jobs: deque[_Job] = deque()
        self._utterance = 0
        self._last_partial_at = -1
        self._finalised = -1  # last utterance whose final was emitted
        self._heard: tuple[int, int, Transcript] | None = None  # last partial emitted
        self.reused_partials = 0
        self.fresh_finals = 0
        self.early_ends = 0
        self._tail = int(min(self.options.tail_ms, vad.options.post_roll_ms)
                         * SAMPLE_RATE_HZ / 1000)

    def feed(self, chunk: AudioChunk) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for ev in self.vad.feed(chunk):
            events.append(ev)
            if isinstance(ev, SpeechEnd):
                self._final(ev)
        self._maybe_partial()
        events.extend(self.poll())
        events.extend(self._maybe_end_early())
        return events

    @property
    def in_flight(self) -> int:
        """Transcriptions submitted and not finished yet."""
        return sum(not j.future.done() for j in self._jobs)

    def poll(self) -> list[StreamEvent]:
        """Transcripts that are ready, in submission order (stale partials dropped)."""
        out: list[StreamEvent] = []
        while self._jobs and self._jobs[0].future.done():
            out.extend(self._collect(self._jobs.popleft()))
        return out

    def finish(self, timeout_s: float = 60.0) -> list[StreamEvent]:
        """End of stream: close an open utterance and wait for every transcript."""
        events: list[StreamEvent] = []
        for ev in self.vad.flush():
            events.append(ev)
            if isinstance(ev, SpeechEnd):
                self._final(ev)
        while self._jobs:
            job = self._jobs.popleft()
            job.future.result(timeout=timeout_s)
            events.extend(self._collect(job))
        return events

    def run(self, chunks: Iterable[AudioChunk]) -> Iterator[StreamEvent]:
        """Feed a finite stream and yield every event, finishing at its end."""
        for chunk in chunks:
            yield from self.feed(chunk)
        yield from self.finish()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self, job: _Job) -> list[StreamEvent]:
        if not job.final and job.utterance <= self._finalised:
            return []  # its final is out already
        t = job.future.result()
        if job.final:
            self._finalised = job.utterance
        else:
            self._heard = (job.utterance, job.covered, t)
        heard_all = (not job.final and job.utterance == self._utterance
                     and self._heard_all(job.covered))
        return [replace(t, final=job.final, utterance=job.utterance, end_t_ns=job.end_t_ns,
                        ready_t_ns=max(t.ready_t_ns, self._now_ns() if not t.ready_t_ns else 0),
                        heard_all=heard_all)]

    def _submit(self, audio: np.ndarray) -> Future[Transcript]:
        def work() -> Transcript:
            t = self.stt.transcribe(audio)
            return replace(t, ready_t_ns=self._now_ns())

        return self._pool.submit(work)

    def _maybe_partial(self) -> None:
        o = self.options
        if not self.vad.active or o.partial_interval_ms <= 0:
            return
        if any(not j.final and not j.future.done() for j in self._jobs):
            return  # at most one partial in flight
        seen, silence = self.vad.samples_seen, self.vad.silence_samples
        if o.early_silence_ms > 0 and silence > 0:
            # In a pause, early endpointing wants a partial that heard all the speech, as
            # soon as it can: none before the tail is heard (it could not count, and would
            # keep Whisper busy), one then, none after one did.
            if silence < self._tail or self._heard_all(self._last_partial_at):
                return
        elif self._last_partial_at >= 0 and seen - self._last_partial_at < (
                o.partial_interval_ms * SAMPLE_RATE_HZ / 1000):
            return
        audio = self.vad.current_audio()
        if len(audio) < o.min_partial_ms * SAMPLE_RATE_HZ / 1000:
            return
        self._last_partial_at = seen
        self._jobs.append(_Job(self._utterance, False, seen, self._submit(audio),
                               self.vad.stamp(seen)))

    def _heard_all(self, covered: int) -> bool:
        """Audio up to ``covered`` holds all the speech so far (and ``tail_ms`` after it)."""
        return covered >= self.vad.last_speech_sample + self._tail

    def _maybe_end_early(self) -> list[StreamEvent]:
        heard, o = self._heard, self.options
        if (o.early_silence_ms <= 0 or heard is None or heard[0] != self._utterance
                or self.vad.silence_samples < o.early_silence_ms * SAMPLE_RATE_HZ / 1000
                or not self._heard_all(heard[1])
                or not sounds_finished(heard[2].text)):
            return []
        ev = self.vad.end_now()
        if ev is None:
            return []
        self.early_ends += 1
        self._final(ev)
        return [ev, *self.poll()]

    def _final(self, ev: SpeechEnd) -> None:
        tail = self._tail
        reuse = None
        if self.options.reuse_partial and not ev.forced:
            partials = [j for j in self._jobs if j.utterance == self._utterance and not j.final]
            if partials and partials[-1].covered >= ev.end_sample + tail:
                reuse = partials[-1]
        heard = self._heard
        if reuse is not None:
            self._jobs.remove(reuse)
            self._jobs.append(replace(reuse, final=True))
            self.reused_partials += 1
        elif (self.options.reuse_partial and not ev.forced and heard is not None
              and heard[0] == self._utterance and heard[1] >= ev.end_sample + tail
              and not any(j.utterance == self._utterance and not j.final for j in self._jobs)):
            # The last partial emitted heard all the speech: it is the final, ready now.
            done: Future[Transcript] = Future()
            done.set_result(replace(heard[2], ready_t_ns=self._now_ns(), features_ms=0.0,
                                    encode_ms=0.0, decode_ms=0.0))  # (no model run for it)
            self._jobs.append(_Job(self._utterance, True, heard[1], done, ev.end_t_ns))
            self.reused_partials += 1
        else:
            self._jobs.append(_Job(self._utterance, True, ev.end_sample, self._submit(ev.audio),
                                   ev.end_t_ns))
            self.fresh_finals += 1
        self._utterance += 1
        self._last_partial_at = -1
