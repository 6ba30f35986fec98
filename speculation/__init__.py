"""Traces, pattern mining, predictors and the lossless speculative executor."""
