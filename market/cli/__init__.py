"""The CLI layer: typer sub-apps that ``cli.py`` composes (only ``cli.py`` imports this package).

:mod:`~market.cli.common` (shared options, output, settings), :mod:`~market.cli.exit_codes` (the one
table), :mod:`~market.cli.errors` (the one handler); client commands over the SDK in
:mod:`~market.cli.jobs` and :mod:`~market.cli.accounts`; :mod:`~market.cli.dev` (``dev up|down``,
``demo``), :mod:`~market.cli.exchange` (``exchange serve``); operator tools on the database:
:mod:`~market.cli.db`, :mod:`~market.cli.ledger`, :mod:`~market.cli.settlement`,
:mod:`~market.cli.replay`, :mod:`~market.cli.pipeline`; :mod:`~market.cli.prove` (snarkjs-style
Groth16 tools). Domain logic stays in the domain packages; these modules parse, call and render.
"""
