"""Watcher hooks for the restart test (loaded by ``watch --hooks tests.settlement.hook_counter:register``):
each settled batch inserts a row into ``test_hook_calls`` inside the watcher's transaction."""

from __future__ import annotations

import os
import time

from sqlalchemy import text

CREATE_TABLE = "CREATE TABLE test_hook_calls (id SERIAL PRIMARY KEY, batch_id VARCHAR(66) NOT NULL, n_jobs INT)"


def register(hooks, engine) -> None:
    delay_s = float(os.environ.get("RM_TEST_HOOK_DELAY_S", "0"))

    def settled(session, batch_id, job_ids) -> None:
        session.execute(text("INSERT INTO test_hook_calls (batch_id, n_jobs) VALUES (:b, :n)"),
                        {"b": batch_id, "n": len(job_ids)})
        time.sleep(delay_s)  # widen the window in which the test kills the process

    hooks.register(on_batch_settled=settled)
