"""Audio sources, VAD, streaming speech-to-text, text-to-speech and the voice tools."""
