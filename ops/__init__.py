"""Operator tools, run with the dev environment against a deployed stack or a running `make local`.

- `python -m ops.conversations` (`make conversations`): list paused and opted-out conversations,
  pause one, or let the assistant answer one again.
"""
