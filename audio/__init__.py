"""Audio only: sources and capture, VAD, streaming speech-to-text, text-to-speech, request
checks, and the voice demo's perception node (:mod:`audio.nodes`)."""
