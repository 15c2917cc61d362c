"""`make bench`: measurements of the built bundle, written to docs/benchmarks.md.

Every figure is a median with its spread and a ratio against a baseline measured
in the same run (interleaved with the subject), so that a busy machine moves
both sides alike. Run with `python -m benchmarks` after `sam build`.
"""
