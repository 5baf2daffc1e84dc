"""Ledger: accounts, operations (idempotency), the immutable transfer journal, pending
reservations (escrow / collateral), unbond requests, pending slashes, and the Postgres-side
invariants (CHECKs, an append-only journal, a deferred per-transaction balance audit).

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-21

Hand-reviewed. Postgres-only objects (triggers, functions) are skipped on SQLite, where the
CHECK constraints and the Python layer hold the invariants.

The audit (Postgres): statement-level triggers with transition tables add, per transaction,
  * to ``balance_sum`` the sum of all balance changes (inserted accounts count their balance),
  * to ``balance_fp`` the sum of each balance change x ``hashtextextended(account_id, 0)``,
  * to ``journal_fp`` the same fingerprint of the journal rows inserted (+amount on the credit
    account, -amount on the debit account),
into one ``ledger_tx_audit`` row keyed by ``txid_current()``. A DEFERRABLE INITIALLY DEFERRED
constraint trigger on that row checks at COMMIT that ``balance_sum = 0`` (money is neither created
nor destroyed) and ``balance_fp = journal_fp`` (each account moved exactly as its journal rows
say: a mismatch escapes only if 64-bit hashes of the accounts involved cancel exactly), then
deletes the row. A violation raises SQLSTATE 23514 (check_violation) and aborts the commit.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_ledger"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(200)
WEI = sa.Numeric(78, 0)
ACCOUNT_KINDS = ("world", "client", "escrow", "provider", "bond", "collateral", "unbonding",
                 "slashing", "protocol", "burn", "other")

_PG_FUNCTIONS = r"""
CREATE FUNCTION ledger_audit_add(d_sum numeric, d_balance_fp numeric, d_journal_fp numeric)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO ledger_tx_audit (txid, balance_sum, balance_fp, journal_fp)
  VALUES (txid_current(), d_sum, d_balance_fp, d_journal_fp)
  ON CONFLICT (txid) DO UPDATE SET
    balance_sum = ledger_tx_audit.balance_sum + EXCLUDED.balance_sum,
    balance_fp = ledger_tx_audit.balance_fp + EXCLUDED.balance_fp,
    journal_fp = ledger_tx_audit.journal_fp + EXCLUDED.journal_fp
$$;

CREATE FUNCTION ledger_audit_accounts_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint; s numeric; fp numeric;
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows nr LEFT JOIN old_rows o ON o.id = nr.id WHERE o.id IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '23514',
      MESSAGE = 'ledger: account ids are immutable (UPDATE of ledger_accounts.id)';
  END IF;
  SELECT count(*), coalesce(sum(nr.balance_wei - o.balance_wei), 0),
         coalesce(sum((nr.balance_wei - o.balance_wei) * hashtextextended(nr.id, 0)), 0)
    INTO n, s, fp
    FROM new_rows nr JOIN old_rows o ON o.id = nr.id
   WHERE nr.balance_wei <> o.balance_wei;
  IF n > 0 THEN PERFORM ledger_audit_add(s, fp, 0); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_audit_accounts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint; s numeric; fp numeric;
BEGIN
  SELECT count(*), coalesce(sum(balance_wei), 0), coalesce(sum(balance_wei * hashtextextended(id, 0)), 0)
    INTO n, s, fp FROM new_rows WHERE balance_wei <> 0;
  IF n > 0 THEN PERFORM ledger_audit_add(s, fp, 0); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_audit_transfers_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint; fp numeric;
BEGIN
  SELECT count(*), coalesce(sum(amount_wei * (hashtextextended(credit_account_id, 0)::numeric
                                              - hashtextextended(debit_account_id, 0))), 0)
    INTO n, fp FROM new_rows;
  IF n > 0 THEN PERFORM ledger_audit_add(0, 0, fp); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_audit_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r ledger_tx_audit%ROWTYPE;
BEGIN
  SELECT * INTO r FROM ledger_tx_audit WHERE txid = NEW.txid;
  IF FOUND THEN
    DELETE FROM ledger_tx_audit WHERE txid = NEW.txid;
    IF r.balance_sum <> 0 OR r.balance_fp <> r.journal_fp THEN
      RAISE EXCEPTION USING ERRCODE = '23514',
        MESSAGE = format('ledger: unbalanced transaction %s: balances changed by %s wei in total '
                         'and do not match the journal (fingerprints %s vs %s); every balance change '
                         'must be a ledger_transfers row', r.txid, r.balance_sum, r.balance_fp, r.journal_fp);
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '23514',
    MESSAGE = format('ledger: %s on %s is forbidden: the journal is append-only; correct with a new transfer',
                     TG_OP, TG_TABLE_NAME);
END $$;
"""

_PG_TRIGGERS = r"""
CREATE TRIGGER ledger_accounts_audit_update AFTER UPDATE ON ledger_accounts
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_accounts_update();
CREATE TRIGGER ledger_accounts_audit_insert AFTER INSERT ON ledger_accounts
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_accounts_insert();
CREATE TRIGGER ledger_transfers_audit_insert AFTER INSERT ON ledger_transfers
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_audit_transfers_insert();
CREATE CONSTRAINT TRIGGER ledger_tx_balanced AFTER INSERT ON ledger_tx_audit
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_audit_check();
CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change();
"""

_PG_DROP = r"""
DROP TRIGGER IF EXISTS ledger_accounts_no_truncate ON ledger_accounts;
DROP TRIGGER IF EXISTS ledger_accounts_no_delete ON ledger_accounts;
DROP TRIGGER IF EXISTS ledger_transfers_no_truncate ON ledger_transfers;
DROP TRIGGER IF EXISTS ledger_transfers_append_only ON ledger_transfers;
DROP TRIGGER IF EXISTS ledger_tx_balanced ON ledger_tx_audit;
DROP TRIGGER IF EXISTS ledger_transfers_audit_insert ON ledger_transfers;
DROP TRIGGER IF EXISTS ledger_accounts_audit_insert ON ledger_accounts;
DROP TRIGGER IF EXISTS ledger_accounts_audit_update ON ledger_accounts;
DROP FUNCTION IF EXISTS ledger_forbid_change();
DROP FUNCTION IF EXISTS ledger_audit_check();
DROP FUNCTION IF EXISTS ledger_audit_transfers_insert();
DROP FUNCTION IF EXISTS ledger_audit_accounts_insert();
DROP FUNCTION IF EXISTS ledger_audit_accounts_update();
DROP FUNCTION IF EXISTS ledger_audit_add(numeric, numeric, numeric);
"""


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("balance_wei", WEI, server_default="0", nullable=False),
        sa.CheckConstraint("balance_wei >= 0 OR allow_negative", name=op.f("ck_ledger_accounts_balance_nonnegative")),
        sa.CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in ACCOUNT_KINDS) + ")",
                           name=op.f("ck_ledger_accounts_kind_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_operations",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("inputs_sha256", sa.String(64), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_operations")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), nullable=False),
        sa.Column("op_id", ID, nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("debit_account_id", ID, nullable=False),
        sa.Column("credit_account_id", ID, nullable=False),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", ID, nullable=True),
        sa.CheckConstraint("amount_wei > 0", name=op.f("ck_ledger_transfers_amount_positive")),
        sa.CheckConstraint("debit_account_id <> credit_account_id", name=op.f("ck_ledger_transfers_distinct_accounts")),
        # No per-row foreign keys (see market.ledger.models.Transfer): the deferred audit below
        # rejects journal rows naming accounts that did not move by their amount.
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transfers")),
    )
    op.create_index("ix_ledger_transfers_debit_account_id", "ledger_transfers", ["debit_account_id"])
    op.create_index("ix_ledger_transfers_credit_account_id", "ledger_transfers", ["credit_account_id"])
    op.create_table(
        "ledger_pendings",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("party", ID, nullable=False),
        sa.Column("debit_account_id", ID, nullable=False),
        sa.Column("credit_account_id", ID, nullable=False),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("remaining_wei", WEI, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at_s", sa.Double(), nullable=True),
        sa.Column("resolved_by", ID, nullable=True),
        sa.CheckConstraint("amount_wei > 0", name=op.f("ck_ledger_pendings_amount_positive")),
        sa.CheckConstraint("remaining_wei >= 0 AND remaining_wei <= amount_wei",
                           name=op.f("ck_ledger_pendings_remaining_in_range")),
        sa.CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')",
                           name=op.f("ck_ledger_pendings_status_known")),
        sa.CheckConstraint("kind IN ('escrow', 'collateral')", name=op.f("ck_ledger_pendings_kind_known")),
        sa.ForeignKeyConstraint(["debit_account_id"], ["ledger_accounts.id"],
                                name=op.f("fk_ledger_pendings_debit_account_id_ledger_accounts")),
        sa.ForeignKeyConstraint(["credit_account_id"], ["ledger_accounts.id"],
                                name=op.f("fk_ledger_pendings_credit_account_id_ledger_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_pendings")),
    )
    op.create_index("ix_ledger_pendings_job_id", "ledger_pendings", ["job_id"])
    op.create_index("ix_ledger_pendings_status_expires", "ledger_pendings", ["status", "expires_at_s"])
    op.create_table(
        "ledger_unbonds",
        sa.Column("id", ID, nullable=False),
        sa.Column("provider", ID, nullable=False),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("requested_at_s", sa.Double(), nullable=False),
        sa.Column("matures_at_s", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("completed_by", ID, nullable=True),
        sa.CheckConstraint("amount_wei > 0", name=op.f("ck_ledger_unbonds_amount_positive")),
        sa.CheckConstraint("status IN ('pending', 'completed')", name=op.f("ck_ledger_unbonds_status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_unbonds")),
    )
    op.create_index("ix_ledger_unbonds_provider", "ledger_unbonds", ["provider"])
    op.create_table(
        "ledger_slashes",
        sa.Column("id", ID, nullable=False),
        sa.Column("provider", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("lock_id", ID, nullable=True),
        sa.Column("amount_wei", WEI, nullable=False),
        sa.Column("from_collateral_wei", WEI, nullable=False),
        sa.Column("from_bond_wei", WEI, nullable=False),
        sa.Column("rescuer", ID, nullable=True),
        sa.Column("client", ID, nullable=True),
        sa.Column("burn_wei", WEI, nullable=False),
        sa.Column("rescuer_wei", WEI, nullable=False),
        sa.Column("client_wei", WEI, nullable=False),
        sa.Column("requested_at_s", sa.Double(), nullable=False),
        sa.Column("final_after_s", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_by", ID, nullable=True),
        sa.CheckConstraint("amount_wei > 0", name=op.f("ck_ledger_slashes_amount_positive")),
        sa.CheckConstraint("from_collateral_wei + from_bond_wei = amount_wei", name=op.f("ck_ledger_slashes_sources_sum")),
        sa.CheckConstraint("burn_wei + rescuer_wei + client_wei = amount_wei", name=op.f("ck_ledger_slashes_split_sum")),
        sa.CheckConstraint("status IN ('pending', 'final', 'cancelled')", name=op.f("ck_ledger_slashes_status_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_slashes")),
    )
    op.create_index("ix_ledger_slashes_provider", "ledger_slashes", ["provider"])
    op.create_table(
        "ledger_tx_audit",
        sa.Column("txid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("balance_sum", sa.Numeric(), nullable=False),
        sa.Column("balance_fp", sa.Numeric(), nullable=False),
        sa.Column("journal_fp", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("txid", name=op.f("pk_ledger_tx_audit")),
    )
    if _is_postgres():
        op.execute(_PG_FUNCTIONS)
        op.execute(_PG_TRIGGERS)
    # The system accounts (market.ledger.SYSTEM_ACCOUNTS), opened once here with zero balances.
    accounts = sa.table("ledger_accounts", sa.column("id", ID), sa.column("kind", sa.String(16)),
                        sa.column("allow_negative", sa.Boolean()), sa.column("balance_wei", WEI))
    op.bulk_insert(accounts, [
        {"id": "world", "kind": "world", "allow_negative": True, "balance_wei": 0},
        {"id": "protocol:fees", "kind": "protocol", "allow_negative": False, "balance_wei": 0},
        {"id": "burn", "kind": "burn", "allow_negative": False, "balance_wei": 0},
    ])


def downgrade() -> None:
    if _is_postgres():
        op.execute(_PG_DROP)
    op.drop_table("ledger_tx_audit")
    op.drop_index("ix_ledger_slashes_provider", table_name="ledger_slashes")
    op.drop_table("ledger_slashes")
    op.drop_index("ix_ledger_unbonds_provider", table_name="ledger_unbonds")
    op.drop_table("ledger_unbonds")
    op.drop_index("ix_ledger_pendings_status_expires", table_name="ledger_pendings")
    op.drop_index("ix_ledger_pendings_job_id", table_name="ledger_pendings")
    op.drop_table("ledger_pendings")
    op.drop_index("ix_ledger_transfers_credit_account_id", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_debit_account_id", table_name="ledger_transfers")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_operations")
    op.drop_table("ledger_accounts")
