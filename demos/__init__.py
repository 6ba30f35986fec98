"""The `rtagent` command line: demos, jitter, benchmarks and tools."""
