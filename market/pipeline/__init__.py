"""The proving pipeline: intake -> prove (on provider Ray nodes) -> verify -> pay and attest.

Modules, one concept each:

* :mod:`~market.pipeline.batching` -- pure: groups, deterministic windows, adaptive batch size.
* :mod:`~market.pipeline.placement` -- pure: hardware-aware split of work over providers.
* :mod:`~market.pipeline.provenance` -- batch records (inputs' hashes, versions, key, provider,
  hardware) stored as JSON files, and their replay inputs.
* :mod:`~market.pipeline.metrics` -- per-stage queue depth, batch size, latency, throughput.
* :mod:`~market.pipeline.stages` -- the stage logic (intake, verify with bisection, pay) on
  bounded queues, without Ray.
* :mod:`~market.pipeline.payments` -- the pay stage on :mod:`market.ledger` (idempotent ids).
* :mod:`~market.pipeline.runtime` -- the Ray adapter: prover actors pinned to provider nodes.
* :mod:`~market.pipeline.errors` -- ``PipelineError`` and its narrow subclasses.
* :mod:`~market.cli.pipeline` -- ``pipeline stats`` and ``replay_batch``.

Nothing is imported here eagerly (Ray is heavy); import the submodules.
"""
