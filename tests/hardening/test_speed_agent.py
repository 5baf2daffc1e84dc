"""Issue 14 finding 10, end to end: a real provider agent (its own token-auth Ray cluster) answers the exchange's
timed speed challenge through its worker pool; the exchange verifies the proof and the provider's offered speed
becomes the measured one (not the agent's benchmark claim)."""

from __future__ import annotations

from market.client import Client
from market.exchange.service.config import ServiceConfig
from market.settings import Settings
from tests.providers.harness import AgentProcess, wait_for
from tests.service.conftest import LEASE_S, SMALL_LIMITS, new_key
from tests.service.harness import ThreadService


def test_a_real_agent_answers_its_challenge_and_is_offered_at_the_measured_speed(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "data", settlement_window_s=1.0, max_attempts=3)
    # a short grace (not the default 30 s): the test waits it out; a challenge that comes while the agent still builds
    # its challenge key waits for the worker, and its measured speed counts all the same
    config = ServiceConfig(lease_s=LEASE_S, round_interval_s=0.1, dev=True, **SMALL_LIMITS,
                           challenge_interval_s=3600.0, challenge_deadline_s=600.0, challenge_grace_s=5.0)
    svc = ThreadService(settings, config).start()
    agent = AgentProcess("measured1", svc.url, tmp_path, cpus=1)
    try:
        agent.start()
        agent.wait_started()
        client = Client(svc.url, new_key())

        def measured() -> dict | None:
            p = next((p for p in client.providers() if p["name"] == "measured1"), None)
            notes = (p or {}).get("hardware", {}).get("exchange", {})
            return p if notes.get("speed_measured") or notes.get("challenge_failed") else None

        p = wait_for(measured, 600.0, "the agent's challenge answer")
        notes = p["hardware"]["exchange"]
        assert notes.get("challenge_failed") is False, (notes, agent.log()[-3000:])
        assert p["offer"]["speed"] == notes["speed_measured"][-1] > 0
        assert "speed challenge" in agent.log() and "passed" in agent.log()
        assert "challenge key warm-up failed" not in agent.log()
    finally:
        agent.cleanup()
        svc.stop()
