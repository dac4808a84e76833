"""The API's pool of one-shot workers, with a stand-in worker program (the real one needs pyinfra
and an inventory; the sandbox's API tests run it): a change answers as soon as the worker has
answered, with everything it printed before, and not once its process has wound down."""

import sys
import textwrap
import time

from codeb_infra.api import worker
from codeb_infra.api.server import WorkerPool

SLOW_EXIT = textwrap.dedent(
    f"""
    import json, sys, time
    print("ready", flush=True)
    job = json.loads(sys.stdin.readline())
    print("step failed: " + job["tool"], file=sys.stderr)
    print({worker.END_OF_OUTPUT!r}, file=sys.stderr, flush=True)
    print(json.dumps({{"ok": True, "status": 200, "result": job["tool"]}}), flush=True)
    time.sleep(5)  # a slow wind-down after the answer
    """
)


def test_a_change_answers_with_what_the_worker_printed_without_waiting_for_it_to_exit():
    pool = WorkerPool(size=1, readers=0, command=[sys.executable, "-c", SLOW_EXIT])
    pool.fill_idle()
    try:
        started = time.monotonic()
        answer, stderr = pool.call({"tool": "promote"})
        took = time.monotonic() - started
    finally:
        pool.close()
    assert answer == {"ok": True, "status": 200, "result": "promote"}
    assert stderr == "step failed: promote\n", "all it printed before the answer, and not the end line"
    assert took < 3, f"waited {took:.1f}s: for the worker's exit, not its answer"
