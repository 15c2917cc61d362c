"""Plain domain functions of bursts: how long a run waits, and how its messages become one user turn."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wa_assistant.conversation.bursts import coalesce_wait
from wa_assistant.conversation.understanding import Understood, together
from wa_assistant.model.content import ImagePart, TextPart


def test_a_run_waits_until_its_oldest_message_is_window_old() -> None:
    assert coalesce_wait([100.0, 101.0], now=100.5, window=2) == 1.5
    assert coalesce_wait([100.0, 101.5], now=102.0, window=2) == 0.0  # the newest just came: no more waiting
    assert coalesce_wait([100.0], now=100.0, window=0) == 0.0  # off


@given(
    sent=st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=10),
    now_after=st.floats(min_value=0, max_value=100),
    window=st.floats(min_value=0, max_value=10),
)
def test_no_message_waits_past_the_window(sent: list[float], now_after: float, window: float) -> None:
    now = max(sent) + now_after
    wait = coalesce_wait(sent, now=now, window=window)
    rounding = 1e-6  # sums of floats up to 1e6
    assert 0 <= wait <= window + rounding
    # The oldest message is answered once it is `window` old, or at once if it already is.
    assert now + wait - min(sent) <= max(window, now - min(sent)) + rounding


def test_together_keeps_the_order_of_texts_and_images() -> None:
    photo = ImagePart(image_url="data:image/png;base64,AAAA")
    joined = together(
        [
            Understood(parts=(TextPart(text="hi"),)),
            Understood(
                parts=(TextPart(text="is this in stock?"), photo), remembered="📷 [photo] is this in stock?"
            ),
            Understood(parts=(TextPart(text="the blue one"),)),
        ]
    )
    assert joined.text == "hi\n\nis this in stock?\n\nthe blue one"
    assert joined.images == (photo,)
    assert joined.remembered == "hi\n\n📷 [photo] is this in stock?\n\nthe blue one"  # never the image


def test_together_of_one_is_that_one() -> None:
    only = Understood(parts=(TextPart(text="hi"),))
    assert together([only]) is only
    assert together([only, Understood(parts=(TextPart(text="there"),))]).remembered is None
