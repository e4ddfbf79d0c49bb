"""Great Expectations suites of the metadata check (reference §6.7): what a Midaz metadata document must be.

The check streams each collection in batches, computes per-document *facts* in Python (does entity_id parse as
a UUID, does its PostgreSQL row exist, is the metadata flat, ...) and hands a DataFrame of facts to the
document suite below; GE decides which documents break which invariant. Duplicates are judged by a second
suite over the per-entity document counts that a MongoDB aggregation returns.

Every expectation carries `meta.kind` (a catalog.py kind of the metadata check): the unexpected rows of
that expectation become findings of that kind. Informational kinds (severity "info" in the catalogue)
are reported as samples but never counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ---- fact values (the columns of the document frame) ----
# `row`: what the matching PostgreSQL table says about entity_id.
ROW_LIVE = "live"  # the row exists and is not soft-deleted
ROW_SOFT_DELETED = "soft_deleted"  # the row exists with deleted_at set (metadata is kept on soft delete)
ROW_MISSING = "missing"  # no row, and the document is older than the soft grace: an orphan
ROW_IN_FLIGHT = "in_flight"  # no row yet, but the document is younger than the soft grace
ROW_NOT_LOOKED_UP = "not_looked_up"  # entity_id is not a UUID: nothing to look up
ROW_VALUES = (ROW_LIVE, ROW_SOFT_DELETED, ROW_MISSING, ROW_IN_FLIGHT, ROW_NOT_LOOKED_UP)

# `entity_name`: compared with the collection's Go type name.
NAME_EXPECTED = "expected"
NAME_MISSING = "missing"  # absent or null: an Update upsert created the document (§3.3)
NAME_OTHER = "other"

# `origin`: Create writes entity_name and created_at; an Update upsert writes neither (§3.3).
ORIGIN_CREATE = "create"
ORIGIN_UPSERT = "upsert"

# `metadata_type`
METADATA_OBJECT = "object"
METADATA_OTHER = "other"

DOCUMENT_COLUMNS = (
    "entity_id_valid",
    "row",
    "entity_name",
    "origin",
    "metadata_type",
    "nested_value",
    "key_too_long",
    "value_too_long",
    "timestamps_inverted",
)


@dataclass(frozen=True)
class Invariant:
    """One expectation of a suite: `column` must take only `allowed` values, else a finding of `kind`."""

    kind: str
    column: str
    allowed: tuple[Any, ...]
    description: str


DOCUMENT_INVARIANTS: tuple[Invariant, ...] = (
    Invariant("metadata_invalid_entity_id", "entity_id_valid", (True,),
              "entity_id is a UUID string (it names a PostgreSQL row by its UUID primary key)"),
    Invariant("metadata_orphan", "row", (ROW_LIVE, ROW_SOFT_DELETED, ROW_IN_FLIGHT, ROW_NOT_LOOKED_UP),
              "the described PostgreSQL row exists (PostgreSQL is written before Mongo; younger documents are "
              "in flight)"),
    Invariant("metadata_entity_soft_deleted", "row", (ROW_LIVE, ROW_MISSING, ROW_IN_FLIGHT, ROW_NOT_LOOKED_UP),
              "informational: the described row is live (metadata survives a soft delete)"),
    Invariant("metadata_entity_name_mismatch", "entity_name", (NAME_EXPECTED, NAME_MISSING),
              "entity_name is the Go type name of the collection"),
    Invariant("metadata_upsert_created", "origin", (ORIGIN_CREATE,),
              "informational: the document was written by Create (it has entity_name and created_at)"),
    Invariant("metadata_not_object", "metadata_type", (METADATA_OBJECT,), "metadata is an object"),
    Invariant("metadata_nested_value", "nested_value", (False,), "metadata values are scalars (no object/array)"),
    Invariant("metadata_key_too_long", "key_too_long", (False,), "metadata keys have at most 100 characters"),
    Invariant("metadata_value_too_long", "value_too_long", (False,),
              "metadata string values have at most 2000 characters"),
    Invariant("metadata_timestamps_inverted", "timestamps_inverted", (False,), "created_at <= updated_at"),
)

DUPLICATE_KIND = "metadata_duplicate"
DUPLICATE_COLUMN = "documents"


def build_document_suite(name: str = "metadata_documents") -> Any:
    """The per-document suite (a FrameSuite validated once per streamed frame of facts)."""
    import great_expectations.expectations as gxe

    from reconciliation.checks.ge import FrameSuite

    expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column=inv.column, value_set=list(inv.allowed), description=inv.description, meta={"kind": inv.kind}
        )
        for inv in DOCUMENT_INVARIANTS
    ]
    return FrameSuite(name, expectations)


def build_duplicate_suite(name: str = "metadata_duplicates") -> Any:
    """Per entity_id: exactly one document (R1 InsertOne + redelivery can write more, R2 upserts cannot)."""
    import great_expectations.expectations as gxe

    from reconciliation.checks.ge import FrameSuite

    return FrameSuite(
        name,
        [
            gxe.ExpectColumnValuesToBeBetween(
                column=DUPLICATE_COLUMN,
                min_value=1,
                max_value=1,
                description="one metadata document per entity_id",
                meta={"kind": DUPLICATE_KIND},
            )
        ],
    )
