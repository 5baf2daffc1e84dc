"""Hardware-aware placement: a provider's benchmarked speed decides how much work it gets.

Pure. Two rules, both from list scheduling on related machines (``Q||Cmax``):

* :func:`choose_provider` -- earliest estimated finish time (the greedy "EFT" rule of HEFT,
  Topcuoglu et al., IEEE TPDS 2002): a batch goes to the provider whose queue of in-flight
  proofs plus this batch finishes first at its benchmarked speed; ties broken by name, so the
  choice is deterministic.
* :func:`split_by_speed` -- split ``n`` jobs over providers in proportion to their speeds by the
  largest-remainder (Hamilton) method, for sizing per-provider batches of one burst.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from market.pipeline.errors import NoProviders, PipelineConfigError


@dataclass(frozen=True)
class ProviderSlot:
    """A provider's prover worker as placement sees it.

    Attributes:
        name: the provider (its Ray node carries ``provider=<name>``).
        proofs_per_s: benchmarked proving speed for the circuit (> 0).
        max_inflight: how many batches it may hold at once (>= 1); more waits in the queue.
    """

    name: str
    proofs_per_s: float
    max_inflight: int = 2

    def __post_init__(self) -> None:
        if not self.proofs_per_s > 0:
            raise PipelineConfigError("proofs_per_s", f"provider {self.name!r}: must be > 0 (benchmark it)")
        if self.max_inflight < 1:
            raise PipelineConfigError("max_inflight", f"provider {self.name!r}: must be >= 1")


def finish_time_s(slot: ProviderSlot, inflight_proofs: int, batch_size: int) -> float:
    """Seconds until ``slot`` would finish its in-flight proofs plus a batch of ``batch_size``."""
    return (inflight_proofs + batch_size) / slot.proofs_per_s


def choose_provider(
    slots: Sequence[ProviderSlot],
    batch_size: int,
    inflight_proofs: Mapping[str, int],
    inflight_batches: Mapping[str, int],
    *,
    circuit_id: str = "",
    exclude: Iterable[str] = (),
) -> ProviderSlot | None:
    """The slot with the earliest estimated finish for a batch of ``batch_size``.

    Slots in ``exclude`` (e.g. the provider that failed this job before) never win. Slots
    already holding ``max_inflight`` batches are skipped: None means "all busy, wait".

    Raises:
        NoProviders: every slot is excluded (the batch can never be placed on these slots).
    """
    excluded = frozenset(exclude)
    eligible = [s for s in slots if s.name not in excluded]
    if not eligible:
        raise NoProviders(circuit_id, excluded)
    free = [s for s in eligible if inflight_batches.get(s.name, 0) < s.max_inflight]
    if not free:
        return None
    return min(free, key=lambda s: (finish_time_s(s, inflight_proofs.get(s.name, 0), batch_size), s.name))


def split_by_speed(n_jobs: int, slots: Sequence[ProviderSlot]) -> dict[str, int]:
    """Split ``n_jobs`` over ``slots`` in proportion to ``proofs_per_s`` (largest remainder).

    Returns:
        ``{name: count}`` summing to ``n_jobs``; remainders go to the largest fractional parts,
        ties to the faster then the alphabetically first provider.

    Raises:
        PipelineConfigError: ``n_jobs < 0`` or no slots.
    """
    if n_jobs < 0:
        raise PipelineConfigError("n_jobs", "must be >= 0")
    if not slots:
        raise PipelineConfigError("slots", "need at least one provider")
    total = sum(s.proofs_per_s for s in slots)
    quotas = {s.name: n_jobs * s.proofs_per_s / total for s in slots}
    counts = {name: int(q) for name, q in quotas.items()}
    left = n_jobs - sum(counts.values())
    order = sorted(slots, key=lambda s: (-(quotas[s.name] - counts[s.name]), -s.proofs_per_s, s.name))
    for s in order[:left]:
        counts[s.name] += 1
    return counts
