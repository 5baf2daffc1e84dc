"""The job lifecycle's pure transition function."""

import pytest

from market.core.jobs import IllegalTransition, JobEvent, JobStatus, transition


def test_happy_path_reaches_settled():
    s = JobStatus.OPEN
    for event in (JobEvent.MATCHED, JobEvent.STARTED, JobEvent.VERIFIED, JobEvent.PAID, JobEvent.SETTLED):
        s = transition(s, event)
    assert s is JobStatus.SETTLED


@pytest.mark.parametrize("status", [JobStatus.ASSIGNED, JobStatus.RUNNING])
def test_fault_reopens_for_reauction(status):
    assert transition(status, JobEvent.FAULT) is JobStatus.OPEN


def test_reorg_unsettles_then_settles_again():
    assert transition(JobStatus.SETTLED, JobEvent.UNSETTLED) is JobStatus.PAID
    assert transition(JobStatus.PAID, JobEvent.SETTLED) is JobStatus.SETTLED


@pytest.mark.parametrize("status,event", [
    (JobStatus.OPEN, JobEvent.PAID),          # never pay an unmatched job
    (JobStatus.RUNNING, JobEvent.PAID),       # never pay before verification
    (JobStatus.PAID, JobEvent.FAULT),         # a paid job is not re-auctioned
    (JobStatus.SETTLED, JobEvent.CANCEL),
    (JobStatus.FAILED, JobEvent.MATCHED),
])
def test_illegal_transitions_raise(status, event):
    with pytest.raises(IllegalTransition) as info:
        transition(status, event)
    assert info.value.status is status and info.value.event is event
