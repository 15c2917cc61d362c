"""Each wamid answered at most once, also when several are answered together (a burst).

Powertools idempotency makes one call once per key; a burst is one piece of work
for several keys, which no library does, so this composes Powertools' own
`idempotent_function` rather than writing records by hand: the call for the
first message wraps the call for the second, and so on, and the innermost does
the work. Powertools' semantics then hold for every key of the run: each is
claimed (INPROGRESS, expiring with the invocation) before any work, stored
COMPLETED with the run's outcome after it, and released if the work raises (so
a retry finds them free). A redelivery of any one of them, alone or in another
run, finds its record and changes nothing.

Two guards make the chain safe:
- messages already answered are left out before the chain is built (`pending`):
  a record found COMPLETED makes Powertools skip everything inside it;
- if another invocation completes one of the keys between that check and its
  claim (a worker that outlived its visibility timeout), the work did not run:
  `Overtaken` is raised inside the chain, so the keys claimed by this attempt
  are released, and the run comes back (uncounted) to be answered without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

from wa_assistant.records import InboundMessage

Outcome = dict[str, str]

COMPLETED = "COMPLETED"


class Overtaken(Exception):  # noqa: N818 - names the situation
    """Another invocation answered a message of this run meanwhile; nothing was sent by this one."""


class OncePerMessage:
    """Runs work for one or several user messages, at most once per wamid (Powertools idempotency)."""

    def __init__(self, persistence: BasePersistenceLayer, config: IdempotencyConfig, key_prefix: str) -> None:
        self.persistence = persistence
        self.config = config
        self.key_prefix = key_prefix
        # Powertools' decorator is untyped; the wrapped function keeps _claim's signature.
        self._once: Callable[..., Outcome] = idempotent_function(
            self._claim,
            data_keyword_argument="message",
            persistence_store=persistence,
            config=config,
            key_prefix=key_prefix,
        )

    @staticmethod
    def _claim(*, message: InboundMessage, then: Callable[[], Outcome]) -> Outcome:
        return then()

    def answered(self, message: InboundMessage) -> bool:
        """True when this wamid's work completed before (its record is COMPLETED and not expired)."""
        self.persistence.configure(self.config, key_prefix=self.key_prefix)
        try:
            record = self.persistence.get_record({"message_id": message.message_id})
        except IdempotencyItemNotFoundError:
            return False
        return record is not None and record.status == COMPLETED

    def pending(self, messages: Sequence[InboundMessage]) -> list[InboundMessage]:
        """The messages not answered yet, in order."""
        if len(messages) == 1:  # Powertools' own check does it, in the claim itself
            return list(messages)
        return [message for message in messages if not self.answered(message)]

    def run(self, messages: Sequence[InboundMessage], work: Callable[[], Outcome]) -> Outcome:
        """`work()` once for all of `messages` (claimed first to last), or the stored outcome of
        a single message answered before. Raises Overtaken (nothing sent) as explained above."""
        done = False

        def innermost() -> Outcome:
            nonlocal done
            outcome = work()
            done = True
            return outcome

        def claim_from(index: int) -> Outcome:
            if index == len(messages):
                return innermost()

            def then() -> Outcome:
                outcome = claim_from(index + 1)
                if not done:  # a later key was COMPLETED by someone else: release this one
                    raise Overtaken(f"{messages[index + 1].message_id} was answered by another invocation")
                return outcome

            return self._once(message=messages[index], then=then)

        outcome = claim_from(0)
        if len(messages) > 1 and not done:
            raise Overtaken(f"{messages[0].message_id} was answered by another invocation")
        return outcome
