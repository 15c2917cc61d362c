"""Operator tools, run with the dev environment against a deployed stack or a running `make local`.

- `python -m ops.doctor` (`make doctor`): checks every link from Meta to the model, one line each.
- `python -m ops.conversations` (`make conversations`): list paused and opted-out conversations,
  pause one, or let the assistant answer one again.
- `ops.stack`: how a tool finds a stack (CloudFormation outputs and parameters, or the local
  stack's state file), its AWS clients, alarms and recent error log lines.
"""
