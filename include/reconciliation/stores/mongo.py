"""Midaz MongoDB metadata (reference §3) through Airflow's MongoHook: collections, entity names, tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetadataCollection:
    database: str  # logical Midaz database: onboarding | transaction
    collection: str  # real collection name (lower-cased Go type name)
    entity_name: str  # what Midaz writes in entity_name
    table: str  # the PostgreSQL table of the described row (same logical database)


COLLECTIONS: tuple[MetadataCollection, ...] = (
    MetadataCollection("onboarding", "organization", "Organization", "organization"),
    MetadataCollection("onboarding", "ledger", "Ledger", "ledger"),
    MetadataCollection("onboarding", "asset", "Asset", "asset"),
    MetadataCollection("onboarding", "segment", "Segment", "segment"),
    MetadataCollection("onboarding", "portfolio", "Portfolio", "portfolio"),
    MetadataCollection("onboarding", "account", "Account", "account"),
    MetadataCollection("onboarding", "accounttype", "AccountType", "account_type"),
    MetadataCollection("transaction", "transaction", "Transaction", "transaction"),
    MetadataCollection("transaction", "operation", "Operation", "operation"),
    MetadataCollection("transaction", "assetrate", "AssetRate", "asset_rate"),
    MetadataCollection("transaction", "operationroute", "OperationRoute", "operation_route"),
    MetadataCollection("transaction", "transactionroute", "TransactionRoute", "transaction_route"),
)

# Empty collections Midaz's EnsureIndexes creates under the wrong names (reference §3.4): ignored.
IGNORED_COLLECTIONS = {("onboarding", "account_type"), ("transaction", "operation_route"), ("transaction", "transaction_route")}


def hook_client(conn_id: str) -> Any:
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=conn_id).get_conn()
