"""The proving pipeline: intake -> prove (on provider Ray nodes) -> verify -> pay and attest.

Modules, one concept each:

* :mod:`~market.pipeline.batching` -- pure: groups, deterministic windows, adaptive batch size.
* :mod:`~market.pipeline.placement` -- pure: hardware-aware split of work over providers.
* :mod:`~market.pipeline.provenance` -- batch records (inputs' hashes, versions, key, provider,
  hardware) stored as JSON files, proving keys as zkeys, and their replay inputs.
* :mod:`~market.pipeline.metrics` -- per-stage queue depth, batch size, latency, throughput.
* :mod:`~market.pipeline.stages` -- the stage logic (intake, verify with bisection, pay) on
  bounded queues, without Ray.
* :mod:`~market.pipeline.payments` -- the pay stage on :mod:`market.ledger` (idempotent ids).
* :mod:`~market.pipeline.settings` -- :class:`~market.pipeline.settings.PipelineSettings`.
* :mod:`~market.pipeline.runtime` -- :class:`~market.pipeline.runtime.ProvingPipeline`: wires the
  stages on Ray and serves the client (submit, wait).
* :mod:`~market.pipeline.intake`, :mod:`~market.pipeline.dispatch`, :mod:`~market.pipeline.verify`,
  :mod:`~market.pipeline.pay` -- the four stage threads (validate and window; place and collect;
  batch-verify and record provenance; pay, slash and settle).
* :mod:`~market.pipeline.workers` -- the providers and their prover actors pinned to their nodes.
* :mod:`~market.pipeline.state` -- what the stage threads share (job outcomes, re-auction, sizing).
* :mod:`~market.pipeline.errors` -- ``PipelineError`` and its narrow subclasses.
* :mod:`~market.pipeline.replay` -- re-prove and re-verify a stored batch (``raymarket replay``).
* :mod:`~market.pipeline.records` -- the exchange's proof batches (its database rows, recorded by
  :mod:`market.exchange.service.batches`): their canonical record and hash, and their replay, which
  re-verifies the stored proofs (the exchange keeps no witness).

The prover worker that runs on the providers' nodes is provider code
(:class:`providers.prover_worker.ProverWorker`) and is injected (``worker_cls``): ``market`` does
not import ``providers``.

Nothing is imported here eagerly (Ray is heavy); import the submodules.
"""
