"""The engine thread: model work handed to it runs there, its errors come back to the caller,
a decode loop that fails ends its calls with the error, and a process that ends while the
thread is busy ends cleanly (it finishes the task in progress)."""

import subprocess
import sys
import threading

import pytest

from tts_explorer.policy import engine_thread


def test_work_runs_on_the_engine_thread_and_its_errors_come_back():
    seen = engine_thread.run(lambda: threading.current_thread().name)
    assert seen == "tts-engine" and not engine_thread.on_engine_thread()
    assert engine_thread.run(lambda: engine_thread.run(lambda: 7)) == 7  # a task asking again runs at once

    def fails():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        engine_thread.run(fails)
    assert engine_thread.run(lambda: 1 + 1) == 2  # the thread lives on


EXIT_WHILE_BUSY = """
import threading, time, torch
from tts_explorer.policy import engine_thread

def work():
    x = torch.randn(256, 256)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        x = torch.tanh(x @ x)

started = threading.Event()
threading.Thread(target=lambda: (started.set(), engine_thread.run(work)), daemon=True).start()
started.wait()
time.sleep(0.3)
print("main exits")
"""


def test_a_process_ending_while_the_engine_thread_computes_exits_cleanly():
    done = subprocess.run([sys.executable, "-c", EXIT_WHILE_BUSY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert "terminate called" not in done.stderr and "main exits" in done.stdout


def test_a_failing_loop_turn_fails_its_calls_instead_of_leaving_them_waiting(tiny_policy):
    from tts_explorer.policy.local import TransformersPolicy

    policy = TransformersPolicy(tiny_policy.model, tiny_policy.tokenizer)

    def broken_turn():
        raise RuntimeError("the loop broke")

    policy._loop_step = broken_turn
    outcome = {}

    def call():
        try:
            policy.generate(["Ann has 2 cats."], [2], max_tokens=4, temperature=0.0)
        except RuntimeError as exc:
            outcome["error"] = str(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive() and outcome == {"error": "the loop broke"}
    del policy._loop_step  # the real loop again: the same policy serves the next call
    assert len(policy.generate(["Ann has 2 cats."], [2], max_tokens=4, temperature=0.0)[0]) == 2


def test_a_load_asked_on_the_engine_thread_never_waits_for_another_callers_load(tiny_model_dir, tmp_path):
    """A probe's backbone is loaded by work on the engine thread; another caller loading a
    model at the same time waits for the engine thread: neither may wait for the other."""
    import shutil
    import time

    from tts_explorer.policy.loading import load_policy

    other = tmp_path / "another-tiny-llama"
    shutil.copytree(tiny_model_dir, other)
    loads = {}

    def on_engine():
        threading.Thread(target=lambda: loads.setdefault("other", load_policy(str(other), dtype="fp32"))).start()
        time.sleep(0.5)  # the other caller is inside load_policy, waiting for this thread
        return load_policy(str(tiny_model_dir), dtype="fp32")

    done = threading.Thread(target=lambda: loads.setdefault("engine", engine_thread.run(on_engine)), daemon=True)
    done.start()
    done.join(timeout=120)
    deadline = time.monotonic() + 120
    while "other" not in loads and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(loads) == {"engine", "other"} and loads["engine"] is not loads["other"]
