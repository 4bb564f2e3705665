"""Inspect AI's side of ``bench/collect.py``: the same workload against the same mock, run by
``inspect_ai.eval`` with one task per target model. Imports nothing of ours, so it runs in the
benchmark's own virtualenv (``var/bench-inspect-venv``), where inspect-ai is installed; it is never a
runtime dependency of the platform. Prints one JSON line: wall and CPU seconds of the
``eval`` call (imports excluded), samples done, the logs' statuses.

    var/bench-inspect-venv/bin/python bench/collect_inspect.py --base-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--queries", type=int, default=1100)
    parser.add_argument("--targets", type=int, default=19)
    # In flight in all: Inspect's openai provider shares one max_connections semaphore among the
    # models with one API key, so this bounds all targets together, as one collector's concurrency.
    parser.add_argument("--concurrency", type=int, required=True)
    options = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")

    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import get_model
    from inspect_ai.solver import generate

    # The prompts are shapes, not content, exactly as the platform's side sends them.
    samples = [
        Sample(input=f"Benchmark query shape {i:05d}", id=i, target="") for i in range(options.queries)
    ]
    task = Task(dataset=samples, solver=generate(), name="bench_collect")
    models = [
        get_model(f"openai/mock-target-{t:02d}", base_url=options.base_url) for t in range(options.targets)
    ]
    with tempfile.TemporaryDirectory() as log_dir:
        started, cpu_started = time.perf_counter(), time.process_time()
        logs = eval(
            task,
            model=models,
            display="none",
            log_dir=log_dir,
            log_samples=False,
            score=False,
            max_tasks=options.targets,
            max_connections=options.concurrency,
            max_samples=options.concurrency,
            temperature=0.0,
            max_tokens=256,
            max_retries=0,
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    done = sum(log.results.completed_samples if log.results else 0 for log in logs)
    statuses = sorted({log.status for log in logs})
    print(json.dumps({"wall": wall, "cpu": cpu, "done": done, "statuses": statuses}))


if __name__ == "__main__":
    main()
