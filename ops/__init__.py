"""Operator tools, run with the dev environment against a deployed stack or a running `make local`.

- `python -m ops.doctor` (`make doctor`): checks every link from Meta to the model, one line each.
- `ops.stack`: how a tool finds a stack (CloudFormation outputs and parameters, or the local
  stack's state file), its AWS clients, alarms and recent error log lines; other tools
  (listing or pausing conversations) open a stack the same way.
"""
