"""Secret-named environment variables are scrubbed whenever they were set: the scan of the
environment is cached, and the cache follows every change to it."""

from __future__ import annotations

import pytest

from masksql_pipe.engine.scrub import known_secrets, scrub_text

FIRST = "first-value-0123456789abcdef"
SECOND = "second-value-0123456789abcdef"
THIRD = "third-value-0123456789abcdef"


def test_a_key_set_after_a_scrub_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEAN_TEST_API_KEY", raising=False)
    monkeypatch.delenv("LEAN_TEST_TOKEN", raising=False)
    assert scrub_text(f"said {FIRST}") == f"said {FIRST}"  # not a secret yet; the scan is cached
    monkeypatch.setenv("LEAN_TEST_API_KEY", FIRST)
    assert scrub_text(f"said {FIRST}") == "said ***"
    monkeypatch.setenv("LEAN_TEST_API_KEY", SECOND)  # a new value under the same name
    assert scrub_text(f"said {SECOND}") == "said ***"
    assert FIRST not in known_secrets()
    monkeypatch.delenv("LEAN_TEST_API_KEY")  # one variable for another: the same count
    monkeypatch.setenv("LEAN_TEST_TOKEN", THIRD)
    assert scrub_text(f"said {THIRD}") == "said ***"
    assert SECOND not in known_secrets()
    monkeypatch.delenv("LEAN_TEST_TOKEN")
    assert THIRD not in known_secrets()


def test_the_answer_is_a_fresh_set_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers may add to what they get without changing what the next call sees."""
    monkeypatch.setenv("LEAN_TEST_SECRET", FIRST)
    found = known_secrets()
    found.add("added-by-a-caller-0123456789")
    assert "added-by-a-caller-0123456789" not in known_secrets()
    assert FIRST in known_secrets()
