"""Answers: what the reader takes for an answer, and equality in bounded time whatever the text."""

import threading
import time

import pytest

from tts_explorer import mathcheck
from tts_explorer.answers import CALL_LIMIT_S, Comparer, equivalent, extract_answer, looks_explosive
from tts_explorer.selection import apply_selection
from tts_explorer.tree import SearchTree


@pytest.mark.parametrize(
    "text, answer",
    [
        ("so 3 + 4 = 7. The answer is 7.", "7"),
        ("The answer is $1,200.", "1200"),
        ("we get \\boxed{\\frac{1}{2}} in the end", "\\frac{1}{2}"),
        ("\\boxed{3} then \\boxed{x^{2}}", "x^{2}"),
        ("The final answer is: 42 apples", "42"),
        ("The answer is x+1.", "x+1"),
        ("The answer is 3 + 4 = 7 apples in all.", "7"),
        ("The answer is 19 pens.", "19"),
        ("The answer is 3.5 hours.", "3.5"),
        ("The answer is **-4**.", "-4"),
        ("Answer: 25%", "25"),
        ("To find the answer is to add them up.", None),
        ("The answer is 12 minus the 5 she ate", None),  # a calculation in words, not a value
        ("the answer is not 5 yet", None),
        ("The answer is 12 - 5", None),
        ("The answer is the number of apples she has left.", None),
        ("\\boxed{}", None),
        ("no answer here", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_a_cut_text_is_not_trusted_at_its_end():
    assert extract_answer("The answer is 1", complete=False) is None  # it may have gone on: 15
    assert extract_answer("The answer is 15. Then", complete=False) == "15"
    assert extract_answer("The answer is \\boxed{15", complete=False) is None


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("0.5", "\\frac{1}{2}", True),
        ("5.00", "5", True),
        ("1,000", "1000", True),
        ("$18", "18", True),
        ("\\dfrac{2}{4}", "0.5", True),
        ("x+1", "1+x", True),
        ("\\sqrt{4}", "2", True),
        ("x = 5", "5", True),
        ("\\{1,2\\}", "\\{2,1\\}", True),
        ("2\\pi", "6.283185307", True),
        ("5", "6", False),
        ("x+1", "x+2", False),
        ("\\sqrt{2}", "1.4", False),
    ],
)
def test_equivalence(a, b, same):
    assert equivalent(a, b) is same
    assert equivalent(None, b) is False


def test_explosive_answers_are_refused_before_sympy_sees_them():
    assert looks_explosive("9^{9^{9}}") and looks_explosive("2**3**4") and looks_explosive("10^{123456}")
    assert looks_explosive("12345!")
    assert not looks_explosive("x^2 + y^2") and not looks_explosive("2^{10}") and not looks_explosive("10^{9}")
    comparer = Comparer()
    started = time.monotonic()
    assert not comparer.equivalent("9^{9^{9}}", "1") and not comparer.equivalent("5", "9^{9^{9}}")
    assert comparer.equivalent("9^{9^{9}}", "9^{9^{9}}")  # the same text is still the same answer
    assert time.monotonic() - started < 0.5
    assert any("too costly" in note for note in comparer.notes)


def test_a_slow_answer_times_out_without_holding_the_interpreter():
    """(10^{9999})^{9999} passes the pre-check; sympy would compute a 100-million-digit number.
    The worker is killed at the call limit while this process keeps running other threads."""
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    Comparer().key("x^2")  # the worker is up
    thread = threading.Thread(target=ticker)
    thread.start()
    comparer = Comparer()
    started = time.monotonic()
    try:
        assert comparer.equivalent("(10^{9999})^{9999}", "7") is False
    finally:
        stop.set()
        thread.join()
    elapsed = time.monotonic() - started
    assert CALL_LIMIT_S - 0.1 < elapsed < CALL_LIMIT_S + 3
    assert len(ticks) > 0.5 * elapsed / 0.01 * 0.5  # the other thread ran throughout
    assert any("could not be compared" in note for note in comparer.notes)
    assert Comparer().equivalent("x+1", "1+x")  # a fresh worker serves the next call
    started = time.monotonic()
    Comparer().key("(10^{9999})^{9999}")  # remembered: no second wait
    assert time.monotonic() - started < 0.2


def test_grouping_costs_one_key_per_distinct_answer(monkeypatch):
    calls = []
    real = mathcheck.WORKER.call

    def counting(op, args, timeout):
        calls.append(op)
        return real(op, args, timeout)

    monkeypatch.setattr(mathcheck.WORKER, "call", counting)
    answers = [f"x^{{2}} + {i}x" for i in range(30)] * 2 + [str(i) for i in range(50)]
    groups = Comparer().group(answers)
    assert len(groups) == 80 and all(len(g) == 2 for g in groups[:30])
    assert len(calls) <= 30  # numbers need no worker; no pairwise comparisons


def test_a_request_budget_bounds_the_total(monkeypatch):
    comparer = Comparer(budget_s=0.0)
    assert comparer.key("y^{3}") == ("text", "y^{3}")
    assert "ran out" in comparer.notes[0]
    assert Comparer().key("y^{3}")[0] == "expr"  # not remembered as a fact about the text


def test_selection_with_a_pathological_reference_finishes_and_notes_it():
    tree = SearchTree("What is 2 + 3?", reference="9^{9^{9}}")
    for answer in ("5", "5", "9^{9^{9}}", "1"):
        tree.add(
            0,
            text=f"The answer is {answer}.",
            stop_reason="answer",
            answer=answer,
            status="finished",
            score=0.5,
            agg_score=0.5,
        )
    started = time.monotonic()
    answer, _ = apply_selection(tree, "majority")
    assert time.monotonic() - started < 1.0
    assert answer == "5" and tree.meta["correct"] is False
    assert [n.correct for n in tree.candidates()] == [False, False, True, False]
    assert "too costly" in tree.meta["notes"][0]
