"""Errors of the ``providers`` package: one root (:class:`ProviderError`) deriving from the project root."""

from __future__ import annotations

from proving.errors import RaymarketError


class ProviderError(RaymarketError):
    """Root of every error raised by ``providers`` (agent, cluster, keys, job runners)."""


class KeystoreError(ProviderError):
    """A keystore is missing, unreadable, not a v3 keystore, or the password is wrong.

    Attributes:
        path: the keystore file.
    """

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class ClusterError(ProviderError):
    """The provider's Ray cluster could not be started, attached to or stopped; the message says why."""


class JobError(ProviderError):
    """A job could not be run on the provider's cluster (bad ticket, worker died, timed out).

    Attributes:
        job_id: the job; reason: a short machine-readable reason (``bad_ticket``, ``worker_died``,
            ``timeout``, ``error``).
    """

    def __init__(self, job_id: str, reason: str, message: str) -> None:
        super().__init__(f"job {job_id}: {reason}: {message}")
        self.job_id, self.reason, self.message = job_id, reason, message
