"""Exceptions of the proving pipeline: one root, narrow subclasses with typed fields."""

from __future__ import annotations

from proving.errors import RaymarketError


class PipelineError(RaymarketError):
    """Root of every error raised by :mod:`market.pipeline` (under the project root ``RaymarketError``)."""


class PipelineConfigError(PipelineError, ValueError):
    """A setting is out of range.

    Attributes:
        field: the setting's name; the message says the allowed range.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidJob(PipelineError, ValueError):
    """A job was rejected at intake (the client's fault: nothing is dispatched, nobody is slashed).

    Attributes:
        job_id: the job; field: the offending field; reason: what is wrong and how to fix it.
    """

    def __init__(self, job_id: str, field: str, reason: str) -> None:
        super().__init__(f"job {job_id!r}: {field}: {reason}")
        self.job_id = job_id
        self.field = field
        self.reason = reason


class UnknownCircuit(InvalidJob):
    """The job names a circuit or proving-key hash the pipeline has not registered."""


class QueueFull(PipelineError):
    """Back-pressure: a bounded stage queue stayed full for the whole timeout.

    Attributes:
        stage: the stage whose queue is full; capacity: its bound.
    """

    def __init__(self, stage: str, capacity: int) -> None:
        super().__init__(f"stage {stage!r} queue is full ({capacity} items); retry later or raise its capacity")
        self.stage = stage
        self.capacity = capacity


class NoProviders(PipelineError):
    """No live provider worker can take a batch of this circuit (all excluded or dead).

    Attributes:
        circuit_id: the circuit; excluded: providers ruled out for this batch.
    """

    def __init__(self, circuit_id: str, excluded: frozenset[str]) -> None:
        super().__init__(f"no live provider for circuit {circuit_id!r} (excluded: {sorted(excluded)})")
        self.circuit_id = circuit_id
        self.excluded = excluded


class StageCrashed(PipelineError):
    """A stage thread of a running pipeline died on an unexpected error; the pipeline must be restarted.

    Attributes:
        stage: the stage; cause: the error it died on.
    """

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"pipeline stage {stage!r} crashed: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause


class BatchNotFound(PipelineError):
    """No provenance record exists for the batch id.

    Attributes:
        batch_id: the id asked for; data_dir: where it was looked for.
    """

    def __init__(self, batch_id: str, data_dir: str) -> None:
        super().__init__(f"no provenance record for batch {batch_id!r} under {data_dir}")
        self.batch_id = batch_id
        self.data_dir = data_dir


class ProvenanceMismatch(PipelineError):
    """A stored batch's inputs no longer match the hashes its record holds (tampered or corrupt).

    Attributes:
        batch_id: the batch; what: which input differs.
    """

    def __init__(self, batch_id: str, what: str) -> None:
        super().__init__(f"batch {batch_id}: stored {what} does not match its recorded hash")
        self.batch_id = batch_id
        self.what = what
