"""The exchange: the market's database steps (submit, rounds, leases, verification, payment).

Import it as ``from market import exchange as ex``; the runtime around it is the exchange service,
:mod:`market.exchange.service` (``raymarket exchange serve``).
"""

from market.exchange.steps import (  # noqa: F401 (the package's public surface)
    GIB,
    ExchangeError,
    UnknownJob,
    UnknownProvider,
    InvalidJob,
    ProviderOffer,
    JobSpec,
    Assignment,
    get_job,
    job_history,
    register_provider,
    submit_job,
    expire_jobs,
    round_inputs,
    apply_round,
    run_round,
    mark_started,
    complete_job,
    fail_job,
    mark_settled,
    mark_unsettled,
    open_job_count,
    job_summary,
    on_leaf_challenged,
    register_settlement_hooks,
    QUOTE_RECENT_PRICES,
    quote_job,
)
