"""Test-wide set-up: moto's SQS FIFO order fix (see local_stack/moto_fixes.py)."""

from local_stack import moto_fixes

moto_fixes.apply()
