"""Each server fixture really works over TCP (DESIGN §5), including Midaz's `transaction` collection on nx-27017."""

from __future__ import annotations

import json
import os
import smtplib
import urllib.request
from email.message import EmailMessage

import psycopg
import pytest

from reconciliation.demo.servers import MongoWireServer


def test_postgres_over_tcp(pg_server) -> None:
    assert pg_server.host == "127.0.0.1" or os.environ.get("RECON_TEST_PG_URL")
    with psycopg.connect(pg_server.admin_conninfo) as conn:
        addr, port, version = conn.execute(
            "SELECT inet_server_addr()::text, inet_server_port(), current_setting('server_version_num')::int"
        ).fetchone()
        assert addr is not None, "expected a TCP connection, not a unix socket"
        assert port == pg_server.port
        assert version >= 130000
        conn.execute("CREATE TEMP TABLE t (amount numeric)")
        conn.execute("INSERT INTO t VALUES ('33.3333333333333333'), ('0.0000000000000001')")
        total = conn.execute("SELECT sum(amount)::text FROM t").fetchone()[0]
        assert total == "33.3333333333333334"


def test_redis_over_tcp(redis_server) -> None:
    with redis_server.client(3) as r:
        assert r.ping() is True
        r.set("recon:test", "1.50")
        assert r.get("recon:test") == b"1.50"
        r.delete("recon:test")
    assert redis_server.url.startswith("redis://")


def _db_names(mongo_server: MongoWireServer) -> tuple[str, str]:
    # Midaz's real names on our throwaway server; never write into them on a real, external MongoDB.
    if mongo_server.external:
        suffix = f"_recon_test_{os.getpid()}"
        return "onboarding" + suffix, "transaction" + suffix
    return "onboarding", "transaction"


def test_mongo_round_trip_on_midaz_names(mongo_server) -> None:
    onboarding, transaction = _db_names(mongo_server)
    with mongo_server.client() as client:
        for dbname, collname, entity in (
            (transaction, "transaction", "Transaction"),
            (onboarding, "account", "Account"),
        ):
            db = client[dbname]
            coll = db[collname]
            coll.delete_many({})
            docs = [
                {
                    "entity_id": f"00000000-0000-7000-8000-{i:012d}",
                    "entity_name": entity,
                    "metadata": {"k": f"v{i % 3}"},
                }
                for i in range(250)
            ]
            docs.append(dict(docs[0], metadata={"k": "dup"}))  # a duplicate entity_id (R1 can write these)
            assert len(coll.insert_many(docs).inserted_ids) == 251
            coll.create_index("entity_id")
            assert collname in db.list_collection_names()

            one = coll.find_one({"entity_id": docs[5]["entity_id"]}, {"_id": 0, "entity_id": 1, "metadata": 1})
            assert one == {"entity_id": docs[5]["entity_id"], "metadata": {"k": "v2"}}
            seen = [d["entity_id"] for d in coll.find({}, {"_id": 0, "entity_id": 1}, batch_size=40)]
            assert len(seen) == 251 and len(set(seen)) == 250
            assert coll.count_documents({}) == 251
            assert coll.count_documents({"metadata.k": "v1"}) == 83
            dups = list(
                coll.aggregate(
                    [
                        {"$match": {"entity_name": entity}},
                        {"$group": {"_id": "$entity_id", "n": {"$sum": 1}}},
                        {"$match": {"n": {"$gt": 1}}},
                    ]
                )
            )
            assert dups == [{"_id": docs[0]["entity_id"], "n": 2}]
            assert sorted(coll.distinct("metadata.k")) == ["dup", "v0", "v1", "v2"]
            assert coll.delete_many({"metadata.k": "dup"}).deleted_count == 1
            assert coll.count_documents({}) == 250
            db.drop_collection(collname)
            assert collname not in db.list_collection_names()
    if mongo_server.external:
        with mongo_server.client() as client:
            client.drop_database(onboarding)
            client.drop_database(transaction)


def test_smtp_server_receives(smtp_server) -> None:
    msg = EmailMessage()
    msg["From"] = "reconciliation@example.com"
    msg["To"] = "ops@example.com"
    msg["Subject"] = "[midaz reconciliation] failed"
    msg.set_content("2 checks failed")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.login("user", "secret")  # any credentials are accepted
        smtp.send_message(msg)
    received = smtp_server.wait_for(1)
    assert received[0]["Subject"] == "[midaz reconciliation] failed"
    assert received[0].get_content().strip() == "2 checks failed"
    assert smtp_server.envelopes[0] == ("reconciliation@example.com", ["ops@example.com"])


def test_slack_server_records_posts(slack_server) -> None:
    body = json.dumps({"text": "reconciliation failed", "blocks": []}).encode()
    req = urllib.request.Request(slack_server.url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"ok"
    assert len(slack_server.requests) == 1
    assert slack_server.requests[0].path == slack_server.WEBHOOK_PATH
    assert slack_server.requests[0].json == {"text": "reconciliation failed", "blocks": []}


@pytest.mark.parametrize("revision", ["r1", "r2"])
def test_midaz_env_is_isolated_and_exported(midaz_env, revision: str) -> None:
    first, second = midaz_env(revision), midaz_env(revision)
    assert first.onboarding_conninfo != second.onboarding_conninfo
    assert first.redis_url != second.redis_url
    assert first.mongo_transaction_db != second.mongo_transaction_db
    for key, value in second.airflow_conn_env().items():
        assert os.environ[key] == value  # the later env wins
    with psycopg.connect(first.transaction_conninfo) as conn:
        version = conn.execute("SELECT version FROM schema_migrations").fetchone()[0]
    assert version == {"r1": 15, "r2": 35}[revision]
    conns = first.airflow_conn_env()
    assert json.loads(conns["AIRFLOW_CONN_MIDAZ_REDIS"])["extra"] == {"db": first.redis_db}
    assert conns["AIRFLOW_CONN_MIDAZ_MONGO"].startswith("mongo://")
    assert conns["MIDAZ_MONGO_TRANSACTION_DB"] == first.mongo_transaction_db


def test_midaz_env_conns_parse_as_airflow_connections(midaz_env) -> None:
    from airflow.models.connection import Connection

    env = midaz_env("r1")
    conns = env.airflow_conn_env()
    pg = Connection.from_json(conns["AIRFLOW_CONN_MIDAZ_TRANSACTION_DB"], conn_id="midaz_transaction_db")
    assert (pg.conn_type, pg.schema) == ("postgres", env.transaction_db)
    redis_conn = Connection.from_json(conns["AIRFLOW_CONN_MIDAZ_REDIS"], conn_id="midaz_redis")
    assert redis_conn.extra_dejson == {"db": env.redis_db}
    mongo = Connection(conn_id="midaz_mongo", uri=conns["AIRFLOW_CONN_MIDAZ_MONGO"])
    assert mongo.conn_type == "mongo" and mongo.host and mongo.port


def test_missing_postgres_binaries_fail_with_install_hint(monkeypatch) -> None:
    import reconciliation.demo.servers as servers

    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(servers.glob, "glob", lambda pattern: [])
    with pytest.raises(servers.ServerError, match=r"apt-get install -y postgresql"):
        servers.find_pg_bindir()
