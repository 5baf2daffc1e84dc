"""``raymarket replay ID``: recompute a recorded auction round, re-verify an exchange proof batch from its stored
proofs, or re-prove a standalone pipeline's batch, and show that it matches its record (an operator tool: it reads
the exchange's database). Exit 1 on a mismatch, 4 when nothing has that id."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from market.cli.common import DatabaseUrl, DataDir, JsonOut, emit, engine, settings
from market.cli.exit_codes import ExitCode
from market.cli.pipeline import print_reverify, replay_command
from market.core.matching import replay as replay_round
from market.db.models import RoundRecord
from market.pipeline.errors import BatchNotFound
from market.pipeline.records import reverify_batch


def replay(item_id: Annotated[str, typer.Argument(help="A round id (r-...), an exchange proof batch (pb-...) or a "
                                                    "standalone pipeline's batch id.")],
           database_url: DatabaseUrl = None, data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Recompute a recorded auction round, or check a proof batch, and show that it matches its record."""
    eng = engine(settings(database_url=database_url, data_dir=data_dir))
    with Session(eng) as s:
        rec = s.get(RoundRecord, item_id)
        if rec is None:  # not an auction round: an exchange proof batch, else a standalone pipeline's batch
            try:
                report = reverify_batch(s, item_id)
            except BatchNotFound:
                report = None
            if report is not None:
                print_reverify(report, as_json)
                return
            replay_command(item_id, pipeline_dir_=None, data_dir=data_dir, prover=None, as_json=as_json,
                           database_url=database_url)
            return
        inputs, in_hash, out_hash = rec.inputs, rec.input_hash, rec.output_hash
    res = replay_round(inputs)
    data = {"round_id": item_id, "input_hash": res.input_hash, "output_hash": res.output_hash,
            "recorded_input_hash": in_hash, "recorded_output_hash": out_hash,
            "matches": res.input_hash == in_hash and res.output_hash == out_hash,
            "assignments": [[a.job_id, a.provider, str(a.price_wei)] for a in res.assignments]}
    emit(data if as_json else f"round {item_id}: {'MATCHES' if data['matches'] else 'DIFFERS'} "
                               f"(input {res.input_hash[:16]}…, output {res.output_hash[:16]}…, "
                               f"{len(data['assignments'])} assignments)", as_json)
    if not data["matches"]:
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
