"""The bundle on one machine: moto, the three functions in worker processes, stand-ins for Meta and Mistral.

`python -m local_stack` (make local), `python -m local_stack.demo` (make demo),
`python -m local_stack.chat` (make chat); `LocalStack` for tests and benchmarks.
"""

from local_stack.stack import LocalStack, StackError

__all__ = ["LocalStack", "StackError"]
