"""Clocks, the deadline loop, jitter statistics, RT hardening, the ZeroMQ bus and supervision.

This package imports none of the other rtagent packages.
"""
