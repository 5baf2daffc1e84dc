"""Job lifecycle: kinds, states and the pure transition function.

A job moves ``open -> assigned -> running -> verified -> paid -> settled``; a failure
(timeout, node death, failed verification, slashed provider) sends it back to ``open`` for
re-auction with its remaining budget, until its deadline or attempt limit makes it ``failed``.
A spot-checked job (inference) waits in ``verifying`` between its attested result and its payment: the
exchange re-executes a secret sample of it on another provider (``market.exchange.service.spot``); a match
goes on to ``verified``, a mismatch back to ``open`` (slashed, re-auctioned), and a job still unverified at
its deadline ``expired`` -> ``failed`` (client refunded, collateral released).
A client may ``cancel`` a job until a result is accepted (``open``, ``assigned``, ``running``). Lifecycles as ``str`` Enums with one pure transition
function, as Ray Serve does for its deployments.
"""

from __future__ import annotations

import enum


class JobKind(str, enum.Enum):
    """What a job computes. ``inference``: sentence embeddings; ``proof``: a Groth16 proof."""

    INFERENCE = "inference"
    PROOF = "proof"


class JobStatus(str, enum.Enum):
    """Where a job is in its lifecycle (see the module docstring)."""

    OPEN = "open"
    ASSIGNED = "assigned"
    RUNNING = "running"
    VERIFYING = "verifying"  # result attested, payment held until a spot re-execution agrees
    VERIFIED = "verified"
    PAID = "paid"
    SETTLED = "settled"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobEvent(str, enum.Enum):
    """What happened to a job."""

    MATCHED = "matched"
    STARTED = "started"
    ATTESTED = "attested"  # a signed result taken, its spot-check pending
    VERIFIED = "verified"
    PAID = "paid"
    SETTLED = "settled"
    UNSETTLED = "unsettled"  # the settling block was reorged away
    FAULT = "fault"  # timeout, node death, bad result: re-auction
    EXPIRED = "expired"  # deadline passed or attempts exhausted
    CANCEL = "cancel"


class IllegalTransition(ValueError):
    """``event`` is not allowed in state ``status``.

    Attributes:
        status: the job's state.
        event: the rejected event.
    """

    def __init__(self, status: JobStatus, event: JobEvent) -> None:
        super().__init__(f"job in state {status.value!r} cannot take event {event.value!r}")
        self.status = status
        self.event = event


_TRANSITIONS: dict[tuple[JobStatus, JobEvent], JobStatus] = {
    (JobStatus.OPEN, JobEvent.MATCHED): JobStatus.ASSIGNED,
    (JobStatus.OPEN, JobEvent.EXPIRED): JobStatus.FAILED,
    (JobStatus.OPEN, JobEvent.CANCEL): JobStatus.CANCELLED,
    (JobStatus.ASSIGNED, JobEvent.STARTED): JobStatus.RUNNING,
    (JobStatus.ASSIGNED, JobEvent.FAULT): JobStatus.OPEN,
    (JobStatus.ASSIGNED, JobEvent.CANCEL): JobStatus.CANCELLED,  # lease revoked, full refund (exchange service)
    (JobStatus.RUNNING, JobEvent.VERIFIED): JobStatus.VERIFIED,
    (JobStatus.RUNNING, JobEvent.FAULT): JobStatus.OPEN,
    (JobStatus.RUNNING, JobEvent.CANCEL): JobStatus.CANCELLED,
    (JobStatus.RUNNING, JobEvent.ATTESTED): JobStatus.VERIFYING,
    (JobStatus.VERIFYING, JobEvent.VERIFIED): JobStatus.VERIFIED,
    (JobStatus.VERIFYING, JobEvent.FAULT): JobStatus.OPEN,  # the spot re-execution disagreed: slash, re-auction
    (JobStatus.VERIFYING, JobEvent.EXPIRED): JobStatus.FAILED,  # unverified at the deadline: refund
    (JobStatus.VERIFIED, JobEvent.PAID): JobStatus.PAID,
    (JobStatus.PAID, JobEvent.SETTLED): JobStatus.SETTLED,
    (JobStatus.SETTLED, JobEvent.UNSETTLED): JobStatus.PAID,
}


def transition(status: JobStatus, event: JobEvent) -> JobStatus:
    """The state after ``event`` happens to a job in ``status``.

    Raises:
        IllegalTransition: when the event is not allowed in that state.
    """
    try:
        return _TRANSITIONS[(JobStatus(status), JobEvent(event))]
    except KeyError:
        raise IllegalTransition(JobStatus(status), JobEvent(event)) from None


TERMINAL = frozenset({JobStatus.SETTLED, JobStatus.FAILED, JobStatus.CANCELLED})
