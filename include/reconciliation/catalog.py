"""Every finding a check can report: its stable `kind`, default severity, what the entity string is, and
the operator hint. Checks emit only kinds listed here; the fault injector's manifest uses the same kinds.

Entity strings (what `Violation.entity` holds, and what the manifest lists):
- an id entity is the lower-case UUID text of that row (balance_id, operation_id, transaction_id, ...);
- a composite entity joins its parts with "/": e.g. "<org>/<ledger>/<asset_code>";
- a Redis key entity is the full key text; a backup-queue entity is the hash field text;
- a Mongo entity is "<database>.<collection>/<entity_id as stored>".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    check: str
    kind: str
    severity: str  # default severity; a check may apply a revision rule (noted in `note`)
    entity: str  # what the entity string is
    hint: str
    note: str = ""


_K = Kind
KINDS: tuple[Kind, ...] = (
    # ---- balances (reference §6.1) ----
    _K("balances", "balance_last_operation_mismatch", "error", "balance_id",
       "The balance row disagrees with the after-values of its last operation (6.1-A): a lost flush if no "
       "Redis key holds it. Re-sync the balance from its operation trail.",
       "R1: version < last op version or amounts differ; R2 after the gap-fix date: version <> as well"),
    _K("balances", "balance_replay_mismatch", "error", "balance_id",
       "Replaying every operation of the balance from zero does not give the stored amounts (6.1-B). "
       "Look for missing, duplicated or altered operations."),
    _K("balances", "operation_arithmetic_invalid", "error", "operation_id",
       "The operation's before/after amounts or versions do not follow its type and amount (6.1-C)."),
    _K("balances", "version_chain_broken", "error", "operation_id",
       "Two mutations of one balance were computed from the same state, or amounts are discontinuous "
       "between consecutive versions (6.1-D): a fork after a stale re-seed or a lost update.",
       "entity = the later operation of the broken pair"),
    _K("balances", "version_gap", "error", "operation_id",
       "R2 only: a version was skipped between two operations written after the gap fix (6.1-D).",
       "entity = the later operation"),
    _K("balances", "balance_sign_invalid", "error", "balance_id",
       "A non-external balance is negative, or an external balance is positive / holds funds (6.1-E)."),
    _K("balances", "deleted_balance_not_zero", "error", "balance_id",
       "A soft-deleted balance still holds funds (6.1-E): money vanished from the ledger's view."),
    _K("balances", "ledger_not_zero_sum", "error", "<org>/<ledger>/<asset_code>",
       "The effective balances of this ledger and asset do not sum to zero (6.1-F): money appeared or "
       "vanished. Inspect the other balance findings of this ledger first."),
    _K("balances", "duplicate_balance", "error", "<org>/<ledger>/<alias>#<key>",
       "More than one live balance row for one alias and key (6.1-G)."),
    _K("balances", "duplicate_account_alias", "error", "<org>/<ledger>/<alias>",
       "More than one live account with the same alias (6.1-G)."),
    _K("balances", "duplicate_asset_code", "error", "<org>/<ledger>/<code>",
       "More than one live asset with the same code (6.1-G)."),
    # ---- double_entry (§6.2) ----
    _K("double_entry", "unbalanced_transaction", "error", "transaction_id",
       "Debits, credits, holds and releases do not match the transaction amount for its status (6.2). "
       "At R2 only reported when the direction rule fails too."),
    _K("double_entry", "value_not_conserved", "error", "transaction_id",
       "The operations of this transaction create or destroy value: Σ(after − before) ≠ 0 (6.2)."),
    _K("double_entry", "operation_asset_mismatch", "error", "transaction_id",
       "An operation's asset differs from its transaction's asset (6.2)."),
    _K("double_entry", "unknown_operation_type", "error", "transaction_id",
       "An operation has a type this revision does not know (6.2)."),
    _K("double_entry", "balance_affected_mismatch", "error", "transaction_id",
       "balance_affected must be false exactly for NOTED transactions (6.2)."),
    # ---- orphans (§6.3) ----
    _K("orphans", "transaction_without_operations", "error", "transaction_id",
       "A settled-age transaction has no operations: a half-written transaction (6.3-a)."),
    _K("orphans", "operation_transaction_mismatch", "error", "operation_id",
       "A live operation belongs to a deleted transaction or to another organization/ledger (6.3-b)."),
    _K("orphans", "operation_balance_missing", "error", "operation_id",
       "The operation's balance_id has no balance row (6.3-c)."),
    _K("orphans", "operation_balance_mismatch", "error", "operation_id",
       "The operation's balance row has another account, asset, key, alias, organization or ledger (6.3-c)."),
    _K("orphans", "reversal_invalid", "error", "transaction_id",
       "A reversal's parent is not an APPROVED original, or amount/asset/status differ (6.3-d).",
       "entity = the child (reversal) transaction"),
    _K("orphans", "multiple_reversals", "error", "transaction_id",
       "A transaction was reversed more than once (6.3-d).", "entity = the parent transaction"),
    _K("orphans", "reversal_asymmetric", "error", "transaction_id",
       "Per account, the reversal's debits/credits do not mirror the original's credits/debits (6.3).",
       "entity = the child transaction"),
    _K("orphans", "persisted_created_status", "error", "transaction_id",
       "CREATED is a request-level status and must never be persisted (6.3-e)."),
    _K("orphans", "unknown_transaction_status", "error", "transaction_id",
       "The transaction status is not APPROVED, PENDING, CANCELED or NOTED (6.3-e)."),
    _K("orphans", "pending_body_mismatch", "error", "transaction_id",
       "body must be set if and only if the transaction is PENDING (6.3-e)."),
    _K("orphans", "ageing_pending_hold", "warning", "transaction_id",
       "Funds have been on hold longer than the pending SLA: commit or cancel the transaction (6.3-f)."),
    _K("orphans", "backup_entry_without_transaction", "error", "<backup-queue hash field>",
       "A backup-queue entry older than the hard grace has no PostgreSQL transaction: the write was lost."),
    # ---- referential (§6.4) ----
    _K("referential", "account_ledger_org_mismatch", "error", "account_id",
       "The account's organization differs from its ledger's organization (6.4)."),
    _K("referential", "account_parent_mismatch", "error", "account_id",
       "The parent account is in another ledger or asset (6.4)."),
    _K("referential", "account_portfolio_mismatch", "error", "account_id",
       "The account's portfolio belongs to another ledger (6.4)."),
    _K("referential", "account_segment_mismatch", "error", "account_id",
       "The account's segment belongs to another ledger (6.4)."),
    _K("referential", "account_asset_missing", "error", "account_id",
       "A live account's asset code is not a live asset of its ledger (6.4)."),
    _K("referential", "asset_without_external_account", "error", "<org>/<ledger>/<code>",
       "A live asset has no live @external/<code> account (6.4)."),
    _K("referential", "live_child_of_deleted_parent", "warning", "<table>/<id>",
       "A live row points at a soft-deleted ledger or organization (6.4)."),
    _K("referential", "transaction_route_missing", "error", "transaction_id",
       "transaction.route / route_id names no transaction_route of the ledger (6.4)."),
    _K("referential", "operation_route_missing", "error", "operation_id",
       "operation.route / route_id names no operation_route of the ledger (6.4)."),
    _K("referential", "balance_account_missing", "error", "balance_id",
       "A live balance's account_id has no account row in the onboarding database (6.4 rule 1)."),
    _K("referential", "balance_account_deleted", "warning", "balance_id",
       "The balance is live but its account was soft-deleted (6.4 rule 1).",
       "warning at R1 (Midaz v3 does this by design), error at R2"),
    _K("referential", "balance_account_mismatch", "error", "balance_id",
       "The balance's alias, asset, type, organization or ledger differ from its account (6.4 rule 1)."),
    _K("referential", "account_default_balance_missing", "error", "account_id",
       "A live account has no live 'default' balance (6.4 rule 2)."),
    _K("referential", "account_default_balance_duplicate", "error", "account_id",
       "A live account has more than one live 'default' balance (6.4 rule 2)."),
    _K("referential", "unknown_ledger", "error", "<table>/<id>",
       "The row's ledger does not exist or belongs to another organization (6.4 rule 3)."),
    _K("referential", "transaction_asset_unknown", "error", "transaction_id",
       "The transaction's asset code is not an asset of its ledger (6.4 rule 4)."),
    _K("referential", "transaction_asset_deleted", "warning", "transaction_id",
       "The transaction's asset was soft-deleted (6.4 rule 4)."),
    _K("referential", "asset_rate_asset_unknown", "error", "entity_id",
       "An asset rate names an asset code that is not an asset of its ledger (6.4 rule 4)."),
    _K("referential", "operation_account_mismatch", "error", "operation_id",
       "The operation's account is missing or has another alias, organization or ledger (6.4 rule 5)."),
    _K("referential", "account_type_unknown", "error", "account_id",
       "For a ledger that validates account types, the account type is not a live account_type (6.4 rule 6)."),
    # ---- redis_sync (§6.5) ----
    _K("redis_sync", "redis_key_unparseable", "error", "redis_key",
       "A balance key does not follow balance:{transactions}:<org>:<ledger>:<alias>#<key>."),
    _K("redis_sync", "redis_value_unparseable", "error", "redis_key",
       "A balance value is not valid balance JSON with decimal amounts."),
    _K("redis_sync", "redis_balance_unknown", "error", "redis_key",
       "The key has no PostgreSQL balance, or points at another balance id (deleted or recreated)."),
    _K("redis_sync", "redis_version_behind", "error", "redis_key",
       "Redis version < PostgreSQL version: Redis is stale or was re-seeded; a fork is likely (6.5)."),
    _K("redis_sync", "redis_amount_divergent", "error", "redis_key",
       "Same version in Redis and PostgreSQL, different amounts (6.5)."),
    _K("redis_sync", "redis_ahead_unscheduled", "error", "redis_key",
       "Redis is ahead of PostgreSQL with no sync schedule entry or lock, past the grace: the update will "
       "be lost when the key expires (6.5)."),
    _K("redis_sync", "redis_ahead_expiring", "error", "redis_key",
       "R1: Redis is ahead, unscheduled, and expires in under 10 minutes: the sync worker missed it (6.5).",
       "critical; exclusive with redis_ahead_unscheduled"),
    _K("redis_sync", "redis_operation_mismatch", "error", "redis_key",
       "The Redis amounts differ from the balance's last operation and no backup-queue entry is pending (6.5)."),
    _K("redis_sync", "redis_key_for_deleted_balance", "warning", "redis_key",
       "A live Redis key holds a soft-deleted balance (6.5)."),
    _K("redis_sync", "lost_flush", "error", "balance_id",
       "Cold balance (no Redis key) whose PostgreSQL row is not its operation high-water mark: the lost-flush "
       "signature of Midaz #2425. Restore it from the last operation."),
    _K("redis_sync", "schedule_member_leaked", "warning", "redis_key",
       "A sync schedule member names a key that no longer exists (6.5 step 5)."),
    _K("redis_sync", "schedule_worker_stuck", "error", "redis_key",
       "A sync schedule member is overdue with no lock: the balance-sync worker is stuck (6.5 step 5)."),
    # ---- settlement (§6.6) ----
    _K("settlement", "stuck_backup_entry", "error", "<backup-queue hash field>",
       "A backup-queue entry is older than the hard grace: the transaction never settled (6.6)."),
    _K("settlement", "backup_entry_age_unknown", "warning", "<backup-queue hash field>",
       "A backup-queue entry has neither a ttl nor a known transaction: its age is unknown (DESIGN §7)."),
    _K("settlement", "quarantined_transaction", "error", "transaction_id",
       "R2: an authorised transaction could not be persisted and sits in transaction_backup_quarantine."),
    # ---- metadata (§6.7) ----
    _K("metadata", "metadata_invalid_entity_id", "error", "<db>.<collection>/<entity_id>",
       "The metadata document's entity_id is not a UUID."),
    _K("metadata", "metadata_orphan", "error", "<db>.<collection>/<entity_id>",
       "The metadata document describes no PostgreSQL row (PostgreSQL is always written first)."),
    _K("metadata", "metadata_duplicate", "error", "<db>.<collection>/<entity_id>",
       "More than one metadata document for one entity.", "warning at R1 (retry artefact), error at R2"),
    _K("metadata", "metadata_entity_name_mismatch", "error", "<db>.<collection>/<entity_id>",
       "entity_name is not the type name of the collection."),
    _K("metadata", "metadata_not_object", "error", "<db>.<collection>/<entity_id>",
       "metadata is not an object."),
    _K("metadata", "metadata_nested_value", "error", "<db>.<collection>/<entity_id>",
       "metadata holds a nested object or array; Midaz allows only flat scalars."),
    _K("metadata", "metadata_key_too_long", "error", "<db>.<collection>/<entity_id>",
       "A metadata key is longer than 100 characters."),
    _K("metadata", "metadata_value_too_long", "error", "<db>.<collection>/<entity_id>",
       "A metadata value is longer than 2000 characters."),
    _K("metadata", "metadata_timestamps_inverted", "error", "<db>.<collection>/<entity_id>",
       "created_at is after updated_at."),
    _K("metadata", "metadata_entity_soft_deleted", "info", "<db>.<collection>/<entity_id>",
       "The document describes a soft-deleted row: Midaz keeps metadata on soft delete (§3.3, §5.5). "
       "Informational, not counted."),
    _K("metadata", "metadata_upsert_created", "info", "<db>.<collection>/<entity_id>",
       "The document has no entity_name or no created_at: an Update upsert created it, not Create (§3.3). "
       "Informational, not counted."),
    # ---- counts (§6.8) ----
    _K("counts", "live_accounts_default_balances_mismatch", "error", "<org>/<ledger>",
       "Live accounts and live default balances differ in number for this ledger (6.8)."),
    _K("counts", "metadata_exceeds_rows", "error", "<db>.<collection>",
       "A Mongo collection has more documents than its PostgreSQL table has rows (6.8)."),
    _K("counts", "row_count_decreased", "error", "<db>.<table>",
       "A PostgreSQL table has fewer rows than at the previous run: rows were hard-deleted (6.8)."),
)

BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS}
CHECKS: tuple[str, ...] = (
    "balances", "double_entry", "orphans", "referential", "redis_sync", "settlement", "metadata", "counts",
)


def kind(name: str) -> Kind:
    """Look up a kind; an unknown name is a programming error, caught by the catalogue test."""
    return BY_KIND[name]
