"""Synthetic Midaz ledger, written into PostgreSQL, Redis and MongoDB exactly the way Midaz writes it.

Why: the checks must be proven on data shaped like production — UUIDv7 ids carrying the write time, exact
decimal amounts with long fractions, R1 version gaps, @external balances, pending/commit/cancel/revert/NOTED
flows, Redis hot copies with TTLs and schedule entries, Mongo metadata — and on an *in-flight slice*: the
newest activity caught mid-write, which a correct check must not report (reference §4–§6, §8).

The history is simulated event by event in time order (balances evolve exactly as add_sub.lua / the R2
Lua compute them) and streamed to PostgreSQL with COPY in chunks, so 10M operations never sit in memory.

    generate(env, operations=100_000, seed=7) -> statistics dict
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import orjson
import psycopg
import redis
from pymongo import MongoClient

from reconciliation.demo.gen_model import (
    BACKUP_QUEUE,
    BALANCE_TTL_S,
    DEBIT_EXTERNAL_SINCE,
    ENSURE_INDEX_ONBOARDING,
    ENSURE_INDEX_TRANSACTION,
    R1_SYNC_DUE_S,
    SCHEDULE_R1,
    SCHEDULE_R2,
    ZERO,
    Account,
    Asset,
    Balance,
    Ledger,
    MidazEnvLike,
    Org,
    copy_line,
    dec,
    dt_ms,
    go_time,
    metadata_doc,
    ts_text,
    uuid7,
)
from reconciliation.demo.gen_sink import BackgroundLoader, copy_lines, try_skip_fk_triggers

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Settled history ends this long before `now`; the in-flight slice lives in [now-10min, now-1min].
SETTLED_END_BEFORE_NOW_MS = 16 * MIN_MS
CHUNK_OPS = 25_000
NULL = "\\N"  # NULL in COPY text format

ASSET_CATALOG = {
    "USD": ("US Dollar", "currency", 2),
    "BRL": ("Brazilian Real", "currency", 2),
    "EUR": ("Euro", "currency", 2),
    "BTC": ("Bitcoin", "crypto", 8),
}
# Median amounts (minor units) of the log-normal amount distribution (reference §8.3).
MEDIAN_UNITS = {2: 5_000, 8: 500_000}
ACCOUNT_TYPES = ("deposit", "savings", "creditCard", "marketplace")
EXTRA_KEYS = ("savings-pocket", "reserve", "cashback")
DESCRIPTIONS = ("", "PIX transfer", "Card settlement", "Payroll", "Refund", "Marketplace payout", "Top-up")
META_KEYS = ("env", "channel", "customer", "batch", "priority", "source", "region", "campaign")

TX_COLS_R1 = ("id", "parent_transaction_id", "description", "status", "status_description", "amount", "asset_code",
              "chart_of_accounts_group_name", "ledger_id", "organization_id", "body", "created_at", "updated_at",
              "route")
TX_COLS_R2 = (*TX_COLS_R1, "route_id")
OP_COLS_R1 = ("id", "transaction_id", "description", "type", "asset_code", "amount", "available_balance",
              "on_hold_balance", "available_balance_after", "on_hold_balance_after", "status", "account_id",
              "account_alias", "balance_id", "chart_of_accounts", "organization_id", "ledger_id", "created_at",
              "updated_at", "route", "balance_affected", "balance_key", "balance_version_before",
              "balance_version_after")
OP_COLS_R2 = (*OP_COLS_R1, "direction", "route_id", "route_code", "route_description")
BAL_COLS_R1 = ("id", "organization_id", "ledger_id", "account_id", "alias", "asset_code", "available", "on_hold",
               "version", "account_type", "allow_sending", "allow_receiving", "created_at", "updated_at",
               "deleted_at", "key")
BAL_COLS_R2 = (*BAL_COLS_R1, "direction", "overdraft_used", "settings")

# Flow mix per transaction (reference §8.3); the remainder of 1.0 goes to 1->1 transfers.
MIX = (("inflow", 0.35), ("outflow", 0.15), ("transfer", 0.38), ("multi", 0.05), ("pending", 0.04),
       ("revert", 0.01), ("noted", 0.01))


class _Leg:
    """One Lua entry / operation of a transaction: which balance, which type/direction, what delta."""

    __slots__ = ("bal", "typ", "direction", "amount", "d_av", "d_hold", "source")

    def __init__(self, bal: Balance, typ: str, direction: str, amount: Decimal, d_av: Decimal, d_hold: Decimal,
                 source: bool) -> None:
        self.bal, self.typ, self.direction, self.amount = bal, typ, direction, amount
        self.d_av, self.d_hold, self.source = d_av, d_hold, source


class _Pending:
    __slots__ = ("tx_id", "ledger", "asset", "amount", "src", "dsts", "fate", "due_ms", "coa")

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


class Generator:
    """One generation run; `generate()` is the public entry point."""

    def __init__(self, env: MidazEnvLike, *, operations: int, seed: int, days: int = 3,
                 now: datetime | None = None, inflight: bool = True, skip_fk_checks: bool = True) -> None:
        if operations < 1:
            raise ValueError("operations must be positive")
        self.env = env
        self.rev = env.revision.lower()
        if self.rev not in ("r1", "r2"):
            raise ValueError(f"revision must be r1 or r2, not {env.revision!r}")
        self.r2 = self.rev == "r2"
        self.target_ops = operations
        self.seed = seed
        self.rng = random.Random(seed)
        self.days = days
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.now_ms = dt_ms(self.now)
        self.start_ms = self.now_ms - days * DAY_MS
        self.end_ms = self.now_ms - SETTLED_END_BEFORE_NOW_MS
        self.inflight_enabled = inflight
        self.skip_fk_checks = skip_fk_checks
        self.wall_start = time.time()
        self.orgs: list[Org] = []
        self.ledgers: list[Ledger] = []
        self.assets: list[Asset] = []
        self.accounts: list[Account] = []
        self.balances: list[Balance] = []
        self.stats: dict[str, Any] = {"transaction": {}, "operation": {}, "flows": {}}
        self.n_ops = 0
        self.n_tx = 0
        self.tx_cols = TX_COLS_R2 if self.r2 else TX_COLS_R1
        self.op_cols = OP_COLS_R2 if self.r2 else OP_COLS_R1
        self.tx_lines: list[str] = []
        self.op_lines: list[str] = []
        self.tx_docs: list[dict[str, Any]] = []
        self.op_docs: list[dict[str, Any]] = []
        self.heap: list[tuple[int, int, _Pending]] = []
        self.heap_seq = 0
        self.reversible: deque[tuple[str, Ledger, Asset, Decimal, list[tuple[str, Account, Decimal]]]] = deque(
            maxlen=4000)
        self.acc_by_id: dict[str, Account] = {}
        self.ts_cache: dict[int, str] = {}
        self.backup_40min: dict[str, Any] | None = None
        self.inflight_items: list[dict[str, Any]] = []
        self.backup_entries: dict[str, bytes] = {}
        self.schedule_extra: dict[str, float] = {}
        self.unscheduled_keys: set[str] = set()
        self.op_docs_rate = 0.02
        self.clock = self.start_ms  # simulated time of the event being generated
        self._inflight_pg: tuple[list[str], list[str], list[dict[str, Any]]] = ([], [], [])
        self._mongo_ref_docs: tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]] = ({}, {})

    # ------------------------------------------------------------------ helpers
    def _ts(self, ms: int) -> str:
        text = self.ts_cache.get(ms)
        if text is None:
            if len(self.ts_cache) > 4096:
                self.ts_cache.clear()
            text = self.ts_cache[ms] = ts_text(ms)
        return text

    def _id(self, ms: int) -> str:
        return uuid7(ms, self.rng)

    def _amount(self, decimals: int) -> Decimal:
        units = max(1, int(self.rng.lognormvariate(math.log(MEDIAN_UNITS[decimals]), 1.2)))
        return Decimal(units).scaleb(-decimals)

    def _metadata(self) -> dict[str, Any]:
        rng = self.rng
        keys = rng.sample(META_KEYS, rng.randint(1, 5))
        out: dict[str, Any] = {}
        for k in keys:
            r = rng.random()
            out[k] = rng.randint(1, 9999) if r < 0.25 else (rng.random() < 0.5) if r < 0.35 else f"{k}-{rng.randint(1, 999)}"
        return out

    # ------------------------------------------------------------------ onboarding
    def build_onboarding(self) -> None:
        """Organizations, ledgers, assets (+ @external accounts), accounts and their balances, in memory."""
        rng = self.rng
        n_user = max(60, min(6000, self.target_ops // 80))
        org_created = [self.start_ms - 180 * DAY_MS, self.start_ms - 2 * DAY_MS]
        for oi in range(2):
            oms = org_created[oi]
            org = Org(self._id(oms), f"Demo Org {oi + 1} Ltda", oms)
            self.orgs.append(org)
            for li in range(2):
                lms = oms + (li + 1) * HOUR_MS
                led = Ledger(self._id(lms), org.id, f"ledger-{oi + 1}-{li + 1}", lms, routes=(oi == 0 and li == 1))
                org.ledgers.append(led)
                self.ledgers.append(led)
                if oi == 0 and li == 0:
                    codes = ["USD", "BRL", "BTC"]
                else:
                    codes = rng.sample(["USD", "BRL", "EUR"], rng.randint(1, 3))
                    if led.routes and "USD" not in codes:
                        codes[0] = "USD"
                for ai, code in enumerate(codes):
                    ams = lms + (ai + 1) * MIN_MS
                    name, typ, decimals = ASSET_CATALOG[code]
                    asset = Asset(self._id(ams), org.id, led.id, code, name, typ, decimals, ams)
                    led.assets.append(asset)
                    self.assets.append(asset)
                    ext = Account(self._id(ams + 5), org.id, led.id, code, f"@external/{code}", "external",
                                  f"External {code}", "external", ams + 5)
                    self._add_account(ext)
                    asset.external = ext.default
        # user accounts, spread over the ledgers (first asset of a ledger weighted higher)
        per_ledger = max(9, n_user // len(self.ledgers))
        serial = 0
        for led in self.ledgers:
            weights = [3] + [1] * (len(led.assets) - 1)
            span = max(MIN_MS, self.start_ms - HOUR_MS - (led.created_ms + HOUR_MS))
            times = sorted(led.created_ms + HOUR_MS + rng.randrange(span) for _ in range(per_ledger))
            for n, ms in enumerate(times):
                # the first accounts go round-robin so that every asset has at least three
                asset = led.assets[n % len(led.assets)] if n < 3 * len(led.assets) else rng.choices(led.assets, weights)[0]
                serial += 1
                r = rng.random()
                typ = "deposit" if r < 0.8 else ACCOUNT_TYPES[1 + int((r - 0.8) / 0.2 * 3) % 3]
                alias = f"@br:pix:{serial:06d}" if rng.random() < 0.1 else f"@{typ.lower()}-{serial:06d}"
                acc = Account(self._id(ms), led.org_id, led.id, asset.code, alias, typ,
                              f"{asset.code} {typ} account", "ACTIVE", ms,
                              entity_id=f"holder-{rng.randint(1, 10**6)}" if rng.random() < 0.3 else None)
                self._add_account(acc)
                # a third of the accounts go dormant at some point (never the first three of an asset)
                if rng.random() < 0.35 and n >= 3 * len(led.assets):
                    acc.default.until_ms = self.start_ms + rng.randrange(self.end_ms - self.start_ms)  # type: ignore[union-attr]
                asset.balances.append(acc.default)
                asset.defaults.append(acc.default)
                if rng.random() < 0.05:
                    key = rng.choice(EXTRA_KEYS)
                    bms = ms + rng.randint(1000, HOUR_MS)
                    extra = Balance(self._id(bms), acc, key, bms, "credit")
                    extra.until_ms = acc.default.until_ms  # type: ignore[union-attr]
                    self.balances.append(extra)
                    asset.balances.append(extra)

    def _add_account(self, acc: Account) -> None:
        self.accounts.append(acc)
        self.acc_by_id[acc.id] = acc
        bms = acc.created_ms + self.rng.randint(1, 50)
        direction = "credit"
        if self.r2 and acc.type == "external" and datetime.fromtimestamp(bms / 1000, UTC).date() > DEBIT_EXTERNAL_SINCE:
            direction = "debit"
        bal = Balance(self._id(bms), acc, "default", bms, direction)
        acc.default = bal
        self.balances.append(bal)

    def write_onboarding(self) -> None:
        """Onboarding rows, routes, account types and asset rates (small: plain COPY, one transaction)."""
        rng = self.rng
        r2 = self.r2
        org_rows, led_rows, asset_rows, acc_rows, seg_rows, port_rows, at_rows = [], [], [], [], [], [], []
        onb_docs: dict[str, list[dict[str, Any]]] = {}
        txn_docs: dict[str, list[dict[str, Any]]] = {}

        def doc(store: dict[str, list[dict[str, Any]]], coll: str, name: str, eid: str, ms: int) -> None:
            upd = ms + 5 + (rng.randint(HOUR_MS, DAY_MS) if rng.random() < 0.1 else 0)
            store.setdefault(coll, []).append(metadata_doc(eid, name, self._metadata(), ms + 5, min(upd, self.end_ms)))

        for i, org in enumerate(self.orgs):
            address = {"line1": f"Rua {i + 1}, 100", "zipCode": "01000-000", "city": "São Paulo", "state": "SP",
                       "country": "BR"}
            org_rows.append(copy_line([org.id, None, org.name, f"Org{i + 1}", f"{12345678000100 + i}", address,
                                       "ACTIVE", None, self._ts(org.created_ms), self._ts(org.created_ms)]))
            if i == 0:
                doc(onb_docs, "organization", "Organization", org.id, org.created_ms)
        for led in self.ledgers:
            row: list[Any] = [led.id, led.name, led.org_id, "ACTIVE", None, self._ts(led.created_ms),
                              self._ts(led.created_ms)]
            if r2:
                row.append({"accounting": {"validateRoutes": True}} if led.routes else {})
            led_rows.append(copy_line(row))
            doc(onb_docs, "ledger", "Ledger", led.id, led.created_ms)
            sms = led.created_ms + 30_000
            seg_id, port_id = self._id(sms), self._id(sms + 1)
            seg_rows.append(copy_line([seg_id, "retail", led.id, led.org_id, "ACTIVE", None, self._ts(sms), self._ts(sms)]))
            port_rows.append(copy_line([port_id, "main portfolio", f"entity-{led.name}", led.id, led.org_id, "ACTIVE",
                                        None, self._ts(sms + 1), self._ts(sms + 1)]))
            doc(onb_docs, "segment", "Segment", seg_id, sms)
            doc(onb_docs, "portfolio", "Portfolio", port_id, sms + 1)
            led.segment_id, led.portfolio_id = seg_id, port_id
            for j, typ in enumerate(ACCOUNT_TYPES):
                ams = sms + 10 + j
                at_id = self._id(ams)
                at_rows.append(copy_line([at_id, led.org_id, led.id, typ[0].upper() + typ[1:], f"{typ} accounts", typ,
                                          self._ts(ams), self._ts(ams)]))
                if j < 2:
                    doc(onb_docs, "accounttype", "AccountType", at_id, ams)
            for asset in led.assets:
                asset_rows.append(copy_line([asset.id, asset.name, asset.type, asset.code, "ACTIVE", None, led.id,
                                             led.org_id, self._ts(asset.created_ms), self._ts(asset.created_ms)]))
                if rng.random() < 0.5:
                    doc(onb_docs, "asset", "Asset", asset.id, asset.created_ms)
        led_by_id = {led.id: led for led in self.ledgers}
        for acc in self.accounts:
            led = led_by_id[acc.ledger_id]
            if acc.type != "external":
                if rng.random() < 0.3:
                    acc.segment_id = led.segment_id
                if rng.random() < 0.2:
                    acc.portfolio_id = led.portfolio_id
            row = [acc.id, acc.name, None, acc.entity_id, acc.asset_code, acc.org_id, acc.ledger_id, acc.portfolio_id,
                   acc.segment_id, acc.status, None, acc.alias, acc.type, self._ts(acc.created_ms),
                   self._ts(acc.created_ms), False]
            if r2:
                row += [None, False]
            acc_rows.append(copy_line(row))
            if acc.type != "external" and rng.random() < 0.3:
                doc(onb_docs, "account", "Account", acc.id, acc.created_ms)

        # transaction database: routes (for the routes ledger) and asset rates
        route_rows, oproute_rows, link_rows, rate_rows = [], [], [], []
        for led in self.ledgers:
            rms = led.created_ms + 40_000
            if led.routes:
                tr_id, src_id, dst_id = self._id(rms), self._id(rms + 1), self._id(rms + 2)
                led.transaction_route_id = tr_id
                led.source_route = (src_id, "SRC-STD", "standard source")
                led.dest_route = (dst_id, "DST-STD", "standard destination")
                route_rows.append(copy_line([tr_id, led.org_id, led.id, "standard transfer", "any standard transfer",
                                             self._ts(rms), self._ts(rms)]))
                for rid, code, desc, typ, ms in ((src_id, "SRC-STD", "standard source", "source", rms + 1),
                                                 (dst_id, "DST-STD", "standard destination", "destination", rms + 2)):
                    row = [rid, led.org_id, led.id, desc, desc, typ, "account_type", "deposit", self._ts(ms),
                           self._ts(ms), code]
                    if r2:
                        row.append(None)
                    oproute_rows.append(copy_line(row))
                    link_rows.append(copy_line([self._id(ms + 3), rid, tr_id, self._ts(ms + 3)]))
                    doc(txn_docs, "operationroute", "OperationRoute", rid, ms)
                doc(txn_docs, "transactionroute", "TransactionRoute", tr_id, rms)
            if len(led.assets) >= 2:
                ams = rms + 10
                rate_id = self._id(ams)
                rate_rows.append(copy_line([rate_id, led.org_id, led.id, self._id(ams), led.assets[0].code,
                                            led.assets[1].code, rng.randint(100, 900), Decimal(2), "External System",
                                            3600, self._ts(ams), self._ts(ams)]))
                doc(txn_docs, "assetrate", "AssetRate", rate_id, ams)

        acc_cols = ("id", "name", "parent_account_id", "entity_id", "asset_code", "organization_id", "ledger_id",
                    "portfolio_id", "segment_id", "status", "status_description", "alias", "type", "created_at",
                    "updated_at", "blocked") + (("holder_id", "holder_check_skipped") if r2 else ())
        with psycopg.connect(self.env.onboarding_conninfo) as conn:
            copy_lines(conn, "organization", ("id", "parent_organization_id", "legal_name", "doing_business_as",
                                              "legal_document", "address", "status", "status_description",
                                              "created_at", "updated_at"), org_rows)
            copy_lines(conn, "ledger", ("id", "name", "organization_id", "status", "status_description", "created_at",
                                        "updated_at") + (("settings",) if r2 else ()), led_rows)
            copy_lines(conn, "asset", ("id", "name", "type", "code", "status", "status_description", "ledger_id",
                                       "organization_id", "created_at", "updated_at"), asset_rows)
            copy_lines(conn, "segment", ("id", "name", "ledger_id", "organization_id", "status", "status_description",
                                         "created_at", "updated_at"), seg_rows)
            copy_lines(conn, "portfolio", ("id", "name", "entity_id", "ledger_id", "organization_id", "status",
                                           "status_description", "created_at", "updated_at"), port_rows)
            copy_lines(conn, "account", acc_cols, acc_rows)
            copy_lines(conn, "account_type", ("id", "organization_id", "ledger_id", "name", "description",
                                              "key_value", "created_at", "updated_at"), at_rows)
        with psycopg.connect(self.env.transaction_conninfo) as conn:
            copy_lines(conn, "transaction_route", ("id", "organization_id", "ledger_id", "title", "description",
                                                   "created_at", "updated_at"), route_rows)
            copy_lines(conn, "operation_route", ("id", "organization_id", "ledger_id", "title", "description",
                                                 "operation_type", "account_rule_type", "account_rule_valid_if",
                                                 "created_at", "updated_at", "code")
                       + (("accounting_entries",) if r2 else ()), oproute_rows)
            copy_lines(conn, "operation_transaction_route", ("id", "operation_route_id", "transaction_route_id",
                                                             "created_at"), link_rows)
            copy_lines(conn, "asset_rate", ("id", "organization_id", "ledger_id", "external_id", "from", "to", "rate",
                                            "rate_scale", "source", "ttl", "created_at", "updated_at"), rate_rows)
        self.stats["onboarding"] = {"organization": len(org_rows), "ledger": len(led_rows), "asset": len(asset_rows),
                                    "segment": len(seg_rows), "portfolio": len(port_rows), "account": len(acc_rows),
                                    "account_type": len(at_rows)}
        self.stats["transaction_db_reference"] = {"transaction_route": len(route_rows),
                                                  "operation_route": len(oproute_rows),
                                                  "operation_transaction_route": len(link_rows),
                                                  "asset_rate": len(rate_rows)}
        self._mongo_ref_docs = (onb_docs, txn_docs)

    # ------------------------------------------------------------------ transactions
    def _emit_tx(self, tx_id: str, parent: str | None, desc: str, status: str, amount: Decimal, asset: Asset,
                 led: Ledger, body: dict[str, Any] | None, created_ms: int, updated_ms: int, coa_group: str) -> None:
        route = (led.transaction_route_id if led.routes else None) or NULL
        body_text = copy_line([body])[:-1] if body is not None else NULL
        line = (f"{tx_id}\t{parent or NULL}\t{desc}\t{status}\t{status}\t{dec(amount)}\t{asset.code}\t{coa_group}\t"
                f"{led.id}\t{led.org_id}\t{body_text}\t{self._ts(created_ms)}\t{self._ts(updated_ms)}\t{route}")
        if self.r2:
            line += f"\t{route}"
        self.tx_lines.append(line + "\n")
        self.n_tx += 1
        st = self.stats["transaction"]
        st[status] = st.get(status, 0) + 1

    def _apply(self, tx_id: str, desc: str, asset: Asset, led: Ledger, legs: list[_Leg], created_ms: int,
               write_ms: int, coa: str, affected: bool = True, lua: bool = True) -> None:
        """Run the Lua entries of one request (mutating balances) and emit one operation row per leg."""
        cts, uts = self._ts(created_ms), self._ts(write_ms)
        code = asset.code
        r2 = self.r2
        routes = led.routes
        for idx, leg in enumerate(legs):
            bal = leg.bal
            if affected:
                ba, bh, vb = bal.available, bal.on_hold, bal.version
                aa = ba + leg.d_av if leg.d_av else ba
                ah = bh + leg.d_hold if leg.d_hold else bh
                va = vb + 1
                bal.available, bal.on_hold, bal.version = aa, ah, va
                if lua:
                    bal.touch_ms = write_ms
                    bal.alias_idx = idx
                    bal.redis_only = False
                    bal.pg_updated_ms = write_ms if not r2 else write_ms + 300
                sba, sbh, saa, sah = dec(ba), dec(bh), dec(aa), dec(ah)
                aff = "t"
            else:
                sba = sbh = saa = sah = "0"
                vb = va = 0
                aff = "f"
            if routes:
                rid, rcode, rdesc = led.source_route if leg.source else led.dest_route  # type: ignore[misc]
            else:
                rid = "\\N"
            oid = self._id(write_ms)
            line = (f"{oid}\t{tx_id}\t{desc}\t{leg.typ}\t{code}\t{dec(leg.amount)}\t{sba}\t{sbh}\t{saa}\t{sah}\t\t"
                    f"{bal.account_id}\t{bal.alias}\t{bal.id}\t{coa}\t{bal.org_id}\t{bal.ledger_id}\t{cts}\t{uts}\t"
                    f"{rid}\t{aff}\t{bal.key}\t{vb}\t{va}")
            if r2:
                if routes:
                    line += f"\t{leg.direction}\t{rid}\t{rcode}\t{rdesc}"
                else:
                    line += f"\t{leg.direction}\t\\N\t\\N\t\\N"
            self.op_lines.append(line + "\n")
            if self.op_docs_rate and self.rng.random() < self.op_docs_rate:
                self.op_docs.append(metadata_doc(oid, "Operation", self._metadata(), write_ms + 7))
        self.n_ops += len(legs)
        st = self.stats["operation"]
        for leg in legs:
            st[leg.typ] = st.get(leg.typ, 0) + 1

    def _noop_bump(self, bal: Balance, idx: int, ms: int, persisted: bool) -> None:
        """R1 only: a Lua entry that changes nothing still increments Version (reference §4.3)."""
        if persisted:
            bal.redis_only = False
            bal.pg_updated_ms = ms
        elif not bal.redis_only:
            bal.pg_version = bal.version  # PostgreSQL keeps the version it had before this bump
            bal.redis_only = True
        bal.version += 1
        bal.touch_ms = ms
        bal.alias_idx = idx

    def _credit(self, bal: Balance, amount: Decimal, source: bool = False) -> _Leg:
        return _Leg(bal, "CREDIT", "credit", amount, amount if bal.sign > 0 else -amount, ZERO, source)

    def _debit(self, bal: Balance, amount: Decimal) -> _Leg:
        return _Leg(bal, "DEBIT", "debit", amount, -amount if bal.sign > 0 else amount, ZERO, True)

    def _funded(self, asset: Asset, minimum: Decimal, exclude: set[str] | None = None, tries: int = 4) -> Balance | None:
        pool = asset.balances
        if not pool:
            return None
        rng = self.rng
        now = self.clock
        for _ in range(tries):
            bal = pool[rng.randrange(len(pool))]
            if bal.available >= minimum and bal.until_ms > now and not bal.in_flight and (
                    exclude is None or bal.account_id not in exclude):
                return bal
        return None

    def _active(self, pool: list[Balance]) -> Balance:
        """A random balance of the pool that is not dormant yet (falls back to any)."""
        rng = self.rng
        for _ in range(6):
            bal = pool[rng.randrange(len(pool))]
            if bal.until_ms > self.clock:
                return bal
        active = [b for b in pool if b.until_ms > self.clock]
        return active[rng.randrange(len(active))] if active else bal

    def _other(self, asset: Asset, exclude: set[str], defaults_only: bool = False) -> Balance | None:
        pool = asset.defaults if defaults_only else asset.balances
        rng = self.rng
        for _ in range(6):
            bal = pool[rng.randrange(len(pool))]
            if bal.account_id not in exclude and not bal.in_flight and bal.until_ms > self.clock:
                return bal
        return None

    def _part(self, bal: Balance, asset: Asset) -> Decimal:
        """An amount the balance can pay: log-normal, capped at a random fraction of what it holds."""
        unit = Decimal(1).scaleb(-asset.decimals)
        cap = (bal.available * Decimal(self.rng.randint(5, 60)) / 100).quantize(unit, rounding=ROUND_DOWN)
        return min(self._amount(asset.decimals), cap)

    def _maybe_tx_doc(self, tx_id: str, ms: int) -> None:
        if self.rng.random() < 0.4:
            self.tx_docs.append(metadata_doc(tx_id, "Transaction", self._metadata(), ms + 5))

    def _pick(self) -> tuple[Ledger, Asset]:
        rng = self.rng
        led = self.ledgers[rng.randrange(len(self.ledgers))]
        assets = led.assets
        if len(assets) == 1 or rng.random() < 0.5:
            return led, assets[0]
        return led, assets[rng.randrange(len(assets))]

    def _coa(self) -> str:
        return "" if self.rng.random() < 0.7 else "1100-cash"

    def _inflow(self, ms: int, led: Ledger, asset: Asset, dst: Balance | None = None) -> None:
        dst = dst or self._active(asset.balances)
        amount = self._amount(asset.decimals)
        self._simple(ms, led, asset, asset.external, dst, amount, "inflow")  # type: ignore[arg-type]

    def _simple(self, ms: int, led: Ledger, asset: Asset, src: Balance, dst: Balance, amount: Decimal,
                flow: str) -> None:
        rng = self.rng
        tx_id = self._id(ms)
        created = ms - rng.randint(10 * MIN_MS, 2 * DAY_MS) if rng.random() < 0.01 else ms
        desc = rng.choice(DESCRIPTIONS)
        coa = self._coa()
        self._emit_tx(tx_id, None, desc, "APPROVED", amount, asset, led, None, created, ms,
                      "" if rng.random() < 0.8 else "TRANSFERS")
        self._apply(tx_id, desc, asset, led, [self._debit(src, amount), self._credit(dst, amount)], created, ms, coa)
        self._maybe_tx_doc(tx_id, ms)
        self.reversible.append((tx_id, led, asset, amount, [("D", self.acc_by_id[src.account_id], amount),
                                                            ("C", self.acc_by_id[dst.account_id], amount)]))
        self._flow(flow)
        self._note_backup_candidate(ms, tx_id, led, [src, dst], amount, asset)

    def _flow(self, name: str) -> None:
        f = self.stats["flows"]
        f[name] = f.get(name, 0) + 1

    def _outflow(self, ms: int, led: Ledger, asset: Asset) -> None:
        src = self._funded(asset, Decimal(1).scaleb(-asset.decimals))
        if src is None:
            return self._inflow(ms, led, asset)
        amount = self._part(src, asset)
        if amount <= 0:
            return self._inflow(ms, led, asset, src)
        self._simple(ms, led, asset, src, asset.external, amount, "outflow")  # type: ignore[arg-type]

    def _transfer(self, ms: int, led: Ledger, asset: Asset) -> None:
        src = self._funded(asset, Decimal(1).scaleb(-asset.decimals))
        if src is None:
            return self._inflow(ms, led, asset)
        dst = self._other(asset, {src.account_id})
        amount = self._part(src, asset)
        if dst is None or amount <= 0:
            return self._inflow(ms, led, asset, src)
        self._simple(ms, led, asset, src, dst, amount, "transfer")

    def _multi(self, ms: int, led: Ledger, asset: Asset) -> None:
        """n->m with amount sources and share / percentage-of-percentage / remaining destinations (§5.6)."""
        rng = self.rng
        unit = Decimal(1).scaleb(-asset.decimals)
        n_src = 1 if rng.random() < 0.6 else rng.randint(2, 3)
        n_dst = rng.randint(2, 4) if n_src == 1 else rng.randint(1, 2)
        used: set[str] = set()
        srcs: list[tuple[Balance, Decimal]] = []
        for _ in range(n_src):
            b = self._funded(asset, unit * 100, used, tries=6)
            if b is None:
                break
            amt = self._part(b, asset)
            if amt <= 0:
                break
            used.add(b.account_id)
            srcs.append((b, amt))
        dsts: list[Balance] = []
        for _ in range(n_dst):
            b = self._other(asset, used)
            if b is None:
                break
            used.add(b.account_id)
            dsts.append(b)
        if not srcs or not dsts or len(srcs) + len(dsts) < 3:
            return self._transfer(ms, led, asset)
        total = sum((a for _, a in srcs), ZERO)
        parts: list[Decimal] = []
        if len(dsts) >= 2:
            style = rng.random()
            if style < 0.2:  # an even split with 16-digit fractions; the remaining leg takes the rest
                share = (total / len(dsts)).quantize(Decimal("1e-16"), rounding=ROUND_DOWN)
                parts = [share] * (len(dsts) - 1)
            elif style < 0.4:  # percentageOfPercentage
                parts = [total * Decimal(rng.randint(10, 60)) / 100 * Decimal(rng.randint(10, 90)) / 100
                         for _ in range(len(dsts) - 1)]
            else:  # share percentages
                parts = [total * Decimal(rng.randint(5, 90 // len(dsts))) / 100 for _ in range(len(dsts) - 1)]
            parts.append(total - sum(parts, ZERO))
        else:
            parts = [total]
        if any(p <= 0 for p in parts):
            return self._transfer(ms, led, asset)
        tx_id = self._id(ms)
        created = ms - rng.randint(10 * MIN_MS, DAY_MS) if rng.random() < 0.01 else ms
        desc = "split payment"
        self._emit_tx(tx_id, None, desc, "APPROVED", total, asset, led, None, created, ms, "")
        legs = [self._debit(b, a) for b, a in srcs] + [self._credit(b, p) for b, p in zip(dsts, parts, strict=True)]
        self._apply(tx_id, desc, asset, led, legs, created, ms, self._coa())
        self._maybe_tx_doc(tx_id, ms)
        self.reversible.append((tx_id, led, asset, total,
                                [("D", self.acc_by_id[b.account_id], a) for b, a in srcs]
                                + [("C", self.acc_by_id[b.account_id], p) for b, p in zip(dsts, parts, strict=True)]))
        self._flow("multi")

    def _noted(self, ms: int, led: Ledger, asset: Asset) -> None:
        """NOTED: operations with balance_affected=false and all before/after/versions 0; no Lua."""
        src = self._active(asset.balances)
        dst = self._other(asset, {src.account_id}) or asset.external
        amount = self._amount(asset.decimals)
        tx_id = self._id(ms)
        self._emit_tx(tx_id, None, "annotation", "NOTED", amount, asset, led, None, ms, ms, "")
        self._apply(tx_id, "annotation", asset, led, [self._debit(src, amount), self._credit(dst, amount)],  # type: ignore[arg-type]
                    ms, ms, "", affected=False, lua=False)
        self._maybe_tx_doc(tx_id, ms)
        self._flow("noted")

    def _pending(self, ms: int, led: Ledger, asset: Asset) -> None:
        rng = self.rng
        src = self._funded(asset, Decimal(1).scaleb(-asset.decimals) * 10)
        if src is None:
            return self._inflow(ms, led, asset)
        amount = self._part(src, asset)
        dst = self._other(asset, {src.account_id}) if rng.random() < 0.8 else asset.external
        if amount <= 0 or dst is None:
            return self._inflow(ms, led, asset, src)
        r = rng.random()
        fate = "commit" if r < 0.70 else "cancel" if r < 0.95 else "pending"
        due = ms + rng.randint(30_000, 3 * HOUR_MS)
        if fate == "pending" and ms < self.now_ms - 6 * DAY_MS and due <= self.end_ms:
            fate = "commit"  # holds older than the pending SLA (7 days) would be legitimate warnings
        if due > self.end_ms:
            fate = "pending"
        tx_id = self._id(ms)
        coa = self._coa()
        body = {
            "chartOfAccountsGroupName": "", "description": "pending payment", "pending": True,
            "send": {"asset": asset.code, "value": dec(amount),
                     "source": {"from": [{"accountAlias": src.alias, "balanceKey": src.key,
                                          "amount": {"asset": asset.code, "value": dec(amount)}}]},
                     "distribute": {"to": [{"accountAlias": dst.alias, "balanceKey": dst.key,
                                            "amount": {"asset": asset.code, "value": dec(amount)}}]}},
        }
        status = {"commit": "APPROVED", "cancel": "CANCELED", "pending": "PENDING"}[fate]
        self._emit_tx(tx_id, None, "pending payment", status, amount, asset, led,
                      body if fate == "pending" else None, ms, due if fate != "pending" else ms, "")
        self._pending_ops(tx_id, led, asset, src, dst, amount, ms, coa)
        self._maybe_tx_doc(tx_id, ms)
        self._flow(f"pending_{fate}")
        if fate != "pending":
            p = _Pending(tx_id=tx_id, ledger=led, asset=asset, amount=amount, src=src, dsts=[dst], fate=fate,
                         due_ms=due, coa=coa)
            self.heap_seq += 1
            heapq.heappush(self.heap, (due, self.heap_seq, p))

    def _pending_ops(self, tx_id: str, led: Ledger, asset: Asset, src: Balance, dst: Balance, amount: Decimal,
                     ms: int, coa: str) -> None:
        if self.r2 and led.routes:  # route validation: DEBIT(debit) + ON_HOLD(credit) on the source
            legs = [_Leg(src, "DEBIT", "debit", amount, -amount, ZERO, True),
                    _Leg(src, "ON_HOLD", "credit", amount, ZERO, amount, True)]
            self._apply(tx_id, "pending payment", asset, led, legs, ms, ms, coa)
            return
        self._apply(tx_id, "pending payment", asset, led, [_Leg(src, "ON_HOLD", "debit", amount, -amount, amount, True)],
                    ms, ms, coa)
        if not self.r2:
            self._noop_bump(dst, 1, ms, persisted=True)

    def _settle_pending(self, p: _Pending) -> None:
        """Commit or cancel at p.due_ms: operations dated now (created_at = commit time)."""
        ms = p.due_ms
        led, asset, src, dst, amount = p.ledger, p.asset, p.src, p.dsts[0], p.amount
        route_mode = self.r2 and led.routes
        if p.fate == "commit":
            if route_mode:
                legs = [_Leg(src, "ON_HOLD", "debit", amount, ZERO, -amount, True), self._credit(dst, amount)]
            else:
                legs = [_Leg(src, "DEBIT", "debit", amount, ZERO, -amount, True), self._credit(dst, amount)]
            self._apply(p.tx_id, "pending payment", asset, led, legs, ms, ms, p.coa)
            self.reversible.append((p.tx_id, led, asset, amount, [("D", self.acc_by_id[src.account_id], amount),
                                                                  ("C", self.acc_by_id[dst.account_id], amount)]))
        else:
            if route_mode:
                legs = [_Leg(src, "RELEASE", "debit", amount, ZERO, -amount, True),
                        _Leg(src, "CREDIT", "credit", amount, amount, ZERO, True)]
            else:
                legs = [_Leg(src, "RELEASE", "credit", amount, amount, -amount, True)]
            self._apply(p.tx_id, "pending payment", asset, led, legs, ms, ms, p.coa)
            if not self.r2:  # the destination entry runs through Lua: Version +1 in Redis only (§5.1)
                self._noop_bump(dst, len(legs), ms, persisted=False)

    def _revert(self, ms: int) -> None:
        """Reversal of a recent APPROVED original: mirrored legs on each account's default balance (§5.1)."""
        rng = self.rng
        for _ in range(4):
            if not self.reversible:
                break
            i = rng.randrange(len(self.reversible))
            cand = self.reversible[i]
            parent_id, led, asset, amount, legs = cand
            ok = True
            for kind, acc, amt in legs:
                bal = acc.default
                if bal.in_flight or (kind == "C" and not bal.external and bal.available < amt):  # type: ignore[union-attr]
                    ok = False
                    break
            if not ok:
                continue
            del self.reversible[i]
            tx_id = self._id(ms)
            self._emit_tx(tx_id, parent_id, "reversal", "APPROVED", amount, asset, led, None, ms, ms, "")
            new_legs = [self._debit(acc.default, amt) for kind, acc, amt in legs if kind == "C"]  # type: ignore[arg-type]
            new_legs += [self._credit(acc.default, amt) for kind, acc, amt in legs if kind == "D"]  # type: ignore[arg-type]
            self._apply(tx_id, "reversal", asset, led, new_legs, ms, ms, "")
            self._flow("revert")
            return
        led, asset = self._pick()
        self._transfer(ms, led, asset)

    def _note_backup_candidate(self, ms: int, tx_id: str, led: Ledger, bals: list[Balance], amount: Decimal,
                               asset: Asset) -> None:
        """Remember the last settled 1->1 transaction written ~40 min before now (in-flight slice, item 4b)."""
        if self.now_ms - 55 * MIN_MS < ms <= self.now_ms - 35 * MIN_MS:
            self.backup_40min = {"tx_id": tx_id, "ms": ms, "org": led.org_id, "ledger": led.id, "asset": asset.code,
                                 "amount": dec(amount), "aliases": [(b.alias, b.key) for b in bals],
                                 "balances": [b.id for b in bals]}

    def simulate(self) -> None:
        """The settled history: transactions in time order over [now - days, now - 16 min]."""
        rng = self.rng
        loader = BackgroundLoader(self.env.transaction_conninfo, None, None, skip_fk=self.skip_fk_checks)
        mongo_loader = BackgroundLoader(None, self.env.mongo_uri, self.env.mongo_transaction_db)
        self.op_docs_rate = 0.02
        span = self.end_ms - self.start_ms
        flows = [f for f, _ in MIX]
        cum = []
        acc = 0.0
        for _, w in MIX:
            acc += w
            cum.append(acc)
        last_ms = self.start_ms
        try:
            while self.n_ops < self.target_ops:
                ms = self.start_ms + int(span * self.n_ops / self.target_ops) + rng.randint(0, 2000)
                ms = max(ms, last_ms)
                ms = min(ms, self.end_ms)
                last_ms = self.clock = ms
                while self.heap and self.heap[0][0] <= ms:
                    self._settle_pending(heapq.heappop(self.heap)[2])
                r = rng.random()
                flow = "transfer"
                for name, c in zip(flows, cum, strict=True):
                    if r < c:
                        flow = name
                        break
                if flow == "revert":
                    self._revert(ms)
                else:
                    led, asset = self._pick()
                    getattr(self, f"_{flow}")(ms, led, asset)
                if len(self.op_lines) >= CHUNK_OPS:
                    self._flush(loader, mongo_loader)
            while self.heap:
                self._settle_pending(heapq.heappop(self.heap)[2])
            self._flush(loader, mongo_loader)
        finally:
            loader.close()
            mongo_loader.close()
        self.stats["fk_checks_skipped"] = loader.fk_skipped

    def _flush(self, loader: BackgroundLoader, mongo_loader: BackgroundLoader) -> None:
        loader.put([("transaction", self.tx_cols, self.tx_lines), ("operation", self.op_cols, self.op_lines)], [])
        mongo_loader.put([], [("transaction", self.tx_docs), ("operation", self.op_docs)])
        self.stats.setdefault("mongo", {})
        m = self.stats["mongo"]
        m["transaction.transaction"] = m.get("transaction.transaction", 0) + len(self.tx_docs)
        m["transaction.operation"] = m.get("transaction.operation", 0) + len(self.op_docs)
        self.tx_lines, self.op_lines, self.tx_docs, self.op_docs = [], [], [], []

    # ------------------------------------------------------------------ in-flight slice
    def _wall_now_ms(self) -> int:
        return self.now_ms + int((time.time() - self.wall_start) * 1000)

    def settle_pg_state(self) -> None:
        """PostgreSQL's view of every balance once the settled history is written (R1 sync worker included)."""
        for b in self.balances:
            if b.redis_only and b.touch_ms + R1_SYNC_DUE_S * 1000 <= self.now_ms:
                b.redis_only = False  # the R1 sync worker copied Redis to PostgreSQL 50 min after the write
                b.pg_updated_ms = b.touch_ms + R1_SYNC_DUE_S * 1000
            if not b.redis_only:
                b.pg_version = b.version
            b.pg_available, b.pg_on_hold = b.available, b.on_hold

    def _snapshot(self, b: Balance, idx: int) -> dict[str, Any]:
        return b.redis_value(self.rev, idx=idx)

    def _backup_entry(self, field: str, *, tx_id: str, led: Ledger, before: list[dict[str, Any]], ms: int,
                      status: str, src: Balance, dst: Balance, amount: Decimal, asset: Asset,
                      after: list[dict[str, Any]] | None = None) -> None:
        dsl = {"send": {"asset": asset.code, "value": dec(amount),
                        "source": {"from": [{"accountAlias": src.alias, "balanceKey": src.key,
                                             "amount": {"asset": asset.code, "value": dec(amount)}}]},
                        "distribute": {"to": [{"accountAlias": dst.alias, "balanceKey": dst.key,
                                               "amount": {"asset": asset.code, "value": dec(amount)}}]}}}
        k_src, k_dst = f"0#{src.alias}#{src.key}", f"1#{dst.alias}#{dst.key}"
        entry: dict[str, Any] = {
            "header_id": self._id(ms).replace("-", ""),
            "transaction_id": tx_id,
            "organization_id": led.org_id,
            "ledger_id": led.id,
            "balances": before,
            "parserDSL": dsl,
            "ttl": go_time(ms),
            "validate": {"asset": asset.code, "value": dec(amount), "pending": status == "PENDING",
                         "sources": [k_src], "destinations": [k_dst], "aliases": [k_src, k_dst],
                         "from": {k_src: {"asset": asset.code, "value": dec(amount), "operation": "DEBIT",
                                          "transactionType": status}},
                         "to": {k_dst: {"asset": asset.code, "value": dec(amount), "operation": "CREDIT",
                                        "transactionType": status}}},
            "transaction_status": status,
            "transaction_date": go_time(ms),
        }
        if self.r2:
            entry.update({"balancesAfter": after or [], "action": "create", "operations": [], "version": 1})
        self.backup_entries[field] = orjson.dumps(entry)

    def _field(self, led: Ledger, tx_id: str) -> str:
        return f"transaction:{{transactions}}:{led.org_id}:{led.id}:{tx_id}"

    def _if_pair(self, led: Ledger, used: set[str]) -> tuple[Asset, Balance, Balance] | None:
        for asset in led.assets:
            unit = Decimal(1).scaleb(-asset.decimals)
            srcs = sorted((b for b in asset.defaults if b.available >= unit * 1000 and b.id not in used
                           and b.until_ms > self.now_ms), key=lambda b: b.id)
            dsts = [b for b in asset.defaults if b.id not in used and b.until_ms > self.now_ms]
            for src in srcs:
                for dst in dsts:
                    if dst.account_id != src.account_id:
                        return asset, src, dst
        return None

    def build_inflight(self) -> None:
        """The in-flight slice (legitimate mid-write states; reference §4.3–§4.5, §6.6). All younger than the
        soft grace, or backed by backup-queue evidence younger than the hard grace."""
        now = self.now_ms
        used: set[str] = set()
        pg_tx: list[str] = []
        pg_ops: list[str] = []
        docs: list[dict[str, Any]] = []
        led = self.ledgers[0]

        def pair(routes_ok: bool = True) -> tuple[Asset, Balance, Balance]:
            for cand in [led, *self.ledgers[1:]]:
                if cand.routes and not routes_ok:
                    continue
                got = self._if_pair(cand, used)
                if got:
                    used.update((got[1].id, got[2].id))
                    got[1].in_flight = got[2].in_flight = True
                    return got
            raise RuntimeError("no funded balances for the in-flight slice; generate more operations")

        def lua(legs: list[_Leg], ms: int) -> list[dict[str, Any]]:
            before = []
            for idx, leg in enumerate(legs):
                b = leg.bal
                before.append(self._snapshot(b, idx))
                b.available += leg.d_av
                b.on_hold += leg.d_hold
                b.version += 1
                b.touch_ms = ms
                b.alias_idx = idx
            return before

        def schedule(bals: list[Balance], ms: int) -> None:
            for b in bals:
                self.schedule_extra[b.redis_key] = (ms / 1000 + R1_SYNC_DUE_S) if not self.r2 else ms / 1000

        # 1. accepted in Redis, nothing in PostgreSQL yet (3 min old): backup entry + schedule entries.
        asset, src, dst = pair()
        ms = now - 3 * MIN_MS
        amount = self._if_amount(src, asset)
        tx_id = self._id(ms)
        before = lua([self._debit(src, amount), self._credit(dst, amount)], ms)
        schedule([src, dst], ms)
        f = self._field(asset_led(self, asset), tx_id)
        self._backup_entry(f, tx_id=tx_id, led=asset_led(self, asset), before=before, ms=ms, status="CREATED",
                           src=src, dst=dst, amount=amount, asset=asset,
                           after=[self._snapshot(src, 0), self._snapshot(dst, 1)])
        self.inflight_items.append({"item": "accepted_not_persisted", "transaction_id": tx_id, "backup_field": f,
                                    "balance_ids": [src.id, dst.id], "at": go_time(ms)})

        # 2. the same, but the keys' schedule members are gone (2 min old: younger than the soft grace).
        asset, src, dst = pair()
        ms = now - 2 * MIN_MS
        amount = self._if_amount(src, asset)
        tx_id = self._id(ms)
        before = lua([self._debit(src, amount), self._credit(dst, amount)], ms)
        self.unscheduled_keys.update((src.redis_key, dst.redis_key))
        f = self._field(asset_led(self, asset), tx_id)
        self._backup_entry(f, tx_id=tx_id, led=asset_led(self, asset), before=before, ms=ms, status="CREATED",
                           src=src, dst=dst, amount=amount, asset=asset,
                           after=[self._snapshot(src, 0), self._snapshot(dst, 1)])
        self.inflight_items.append({"item": "redis_ahead_unscheduled_young", "transaction_id": tx_id,
                                    "backup_field": f, "balance_ids": [src.id, dst.id], "at": go_time(ms)})

        # 3. transaction row written 1 min ago, operations not yet; metadata already there.
        asset, src, dst = pair()
        tled = asset_led(self, asset)
        ms = now - MIN_MS
        amount = self._if_amount(src, asset)
        tx_id = self._id(ms)
        before = lua([self._debit(src, amount), self._credit(dst, amount)], ms)
        schedule([src, dst], ms)
        if not self.r2:  # R1 BTO order: balances first, then the transaction row
            for b in (src, dst):
                b.pg_available, b.pg_on_hold, b.pg_version, b.pg_updated_ms = b.available, b.on_hold, b.version, ms
        f = self._field(tled, tx_id)
        self._backup_entry(f, tx_id=tx_id, led=tled, before=before, ms=ms, status="CREATED", src=src, dst=dst,
                           amount=amount, asset=asset, after=[self._snapshot(src, 0), self._snapshot(dst, 1)])
        saved = self.tx_lines
        self.tx_lines = pg_tx
        self._emit_tx(tx_id, None, "PIX transfer", "APPROVED", amount, asset, tled, None, ms, ms, "")
        self.tx_lines = saved
        docs.append(metadata_doc(tx_id, "Transaction", {"channel": "pix", "inflight": True}, ms + 5))
        self.inflight_items.append({"item": "transaction_without_operations_yet", "transaction_id": tx_id,
                                    "backup_field": f, "balance_ids": [src.id, dst.id], "at": go_time(ms)})

        # 4. fully persisted 5 min ago; its backup entry not yet removed.
        asset, src, dst = pair()
        tled = asset_led(self, asset)
        ms = now - 5 * MIN_MS
        amount = self._if_amount(src, asset)
        tx_id = self._id(ms)
        before = [self._snapshot(src, 0), self._snapshot(dst, 1)]
        saved_tx, saved_ops = self.tx_lines, self.op_lines
        self.tx_lines, self.op_lines = pg_tx, pg_ops
        self.op_docs_rate = 0.0
        self._emit_tx(tx_id, None, "Card settlement", "APPROVED", amount, asset, tled, None, ms, ms, "")
        self._apply(tx_id, "Card settlement", asset, tled, [self._debit(src, amount), self._credit(dst, amount)],
                    ms, ms, "")
        self.tx_lines, self.op_lines = saved_tx, saved_ops
        for b in (src, dst):
            b.pg_available, b.pg_on_hold, b.pg_version = b.available, b.on_hold, b.version
        if not self.r2:
            schedule([src, dst], ms)
        f = self._field(tled, tx_id)
        self._backup_entry(f, tx_id=tx_id, led=tled, before=before, ms=ms, status="CREATED", src=src, dst=dst,
                           amount=amount, asset=asset, after=[self._snapshot(src, 0), self._snapshot(dst, 1)])
        self.inflight_items.append({"item": "settled_backup_entry_not_removed", "transaction_id": tx_id,
                                    "backup_field": f, "balance_ids": [src.id, dst.id], "at": go_time(ms)})

        # 4b. a settled transaction of ~40 min ago whose backup entry remains (younger than the hard grace).
        if self.backup_40min:
            c = self.backup_40min
            f = f"transaction:{{transactions}}:{c['org']}:{c['ledger']}:{c['tx_id']}"
            entry = {"header_id": c["tx_id"].replace("-", ""), "transaction_id": c["tx_id"],
                     "organization_id": c["org"], "ledger_id": c["ledger"], "balances": [],
                     "parserDSL": {"send": {"asset": c["asset"], "value": c["amount"]}}, "ttl": go_time(c["ms"]),
                     "validate": {"asset": c["asset"], "value": c["amount"], "pending": False,
                                  "sources": [f"0#{c['aliases'][0][0]}#{c['aliases'][0][1]}"],
                                  "destinations": [f"1#{c['aliases'][1][0]}#{c['aliases'][1][1]}"]},
                     "transaction_status": "CREATED", "transaction_date": go_time(c["ms"])}
            self.backup_entries[f] = orjson.dumps(entry)
            self.inflight_items.append({"item": "settled_backup_entry_40min", "transaction_id": c["tx_id"],
                                        "backup_field": f, "balance_ids": c["balances"], "at": go_time(c["ms"])})

        # 5. a pending transaction (8 min ago, persisted) committed 2 min ago in Redis only: the commit's
        #    backup entry holds only {"balances": [...]} (no ttl, no validate), PostgreSQL still says PENDING.
        asset, src, dst = pair(routes_ok=False)
        tled = asset_led(self, asset)
        ms_p = now - 8 * MIN_MS
        amount = self._if_amount(src, asset)
        tx_id = self._id(ms_p)
        body = {"description": "pending payment", "pending": True,
                "send": {"asset": asset.code, "value": dec(amount),
                         "source": {"from": [{"accountAlias": src.alias, "balanceKey": src.key,
                                              "amount": {"asset": asset.code, "value": dec(amount)}}]},
                         "distribute": {"to": [{"accountAlias": dst.alias, "balanceKey": dst.key,
                                                "amount": {"asset": asset.code, "value": dec(amount)}}]}}}
        saved_tx, saved_ops = self.tx_lines, self.op_lines
        self.tx_lines, self.op_lines = pg_tx, pg_ops
        self._emit_tx(tx_id, None, "pending payment", "PENDING", amount, asset, tled, body, ms_p, ms_p, "")
        self._pending_ops(tx_id, tled, asset, src, dst, amount, ms_p, "")
        self.tx_lines, self.op_lines = saved_tx, saved_ops
        for b in (src, dst):
            b.pg_available, b.pg_on_hold, b.pg_version, b.pg_updated_ms = b.available, b.on_hold, b.version, ms_p
        ms_c = now - 2 * MIN_MS
        before = lua([_Leg(src, "DEBIT", "debit", amount, ZERO, -amount, True), self._credit(dst, amount)], ms_c)
        schedule([src, dst], ms_c)
        f = self._field(tled, tx_id)
        self.backup_entries[f] = orjson.dumps({"balances": before})
        self.inflight_items.append({"item": "commit_in_redis_only", "transaction_id": tx_id, "backup_field": f,
                                    "balance_ids": [src.id, dst.id], "at": go_time(ms_c)})

        self._inflight_pg = (pg_tx, pg_ops, docs)

    def _if_amount(self, src: Balance, asset: Asset) -> Decimal:
        unit = Decimal(1).scaleb(-asset.decimals)
        return max(unit, (src.available / 10).quantize(unit, rounding=ROUND_DOWN))

    # ------------------------------------------------------------------ final writes
    def write_balances_and_inflight(self) -> None:
        cols = BAL_COLS_R2 if self.r2 else BAL_COLS_R1
        lines = []
        for b in self.balances:
            row: list[Any] = [b.id, b.org_id, b.ledger_id, b.account_id, b.alias, b.asset_code, b.pg_available,
                              b.pg_on_hold, b.pg_version, b.account_type, True, True, self._ts(b.created_ms),
                              self._ts(max(b.pg_updated_ms, b.created_ms)), None, b.key]
            if self.r2:
                row += [b.direction, ZERO, None]
            lines.append(copy_line(row))
        with psycopg.connect(self.env.transaction_conninfo) as conn:
            if self.skip_fk_checks:
                try_skip_fk_triggers(conn)
            copy_lines(conn, "balance", cols, lines)
            if self.inflight_enabled:
                pg_tx, pg_ops, _ = self._inflight_pg
                copy_lines(conn, "transaction", self.tx_cols, pg_tx)
                copy_lines(conn, "operation", self.op_cols, pg_ops)
            conn.commit()
            conn.execute("ANALYZE")
        self.stats["balance"] = len(lines)

    def write_redis(self) -> None:
        """Hot keys (touched in the last hour, TTL = 3600 - age), schedule ZSET(s), backup queue (§4.1–§4.4)."""
        client = redis.Redis.from_url(self.env.redis_url)
        wall = self._wall_now_ms()
        n_keys = n_sched = 0
        try:
            pipe = client.pipeline(transaction=False)
            sched_key = SCHEDULE_R2 if self.r2 else SCHEDULE_R1
            for b in self.balances:
                if not b.touch_ms:
                    continue
                age_s = (wall - b.touch_ms) / 1000
                ttl = int(BALANCE_TTL_S - age_s)
                if ttl <= 5:
                    continue
                key = b.redis_key
                pipe.set(key, orjson.dumps(b.redis_value(self.rev)), ex=ttl)
                n_keys += 1
                if key in self.unscheduled_keys:
                    pass
                elif key in self.schedule_extra:
                    pipe.zadd(sched_key, {key: self.schedule_extra[key]})
                    n_sched += 1
                elif not self.r2 and age_s < R1_SYNC_DUE_S:
                    pipe.zadd(sched_key, {key: b.touch_ms / 1000 + R1_SYNC_DUE_S})
                    n_sched += 1
                if n_keys % 5000 == 0:
                    pipe.execute()
            for f, v in self.backup_entries.items():
                pipe.hset("backup_queue:{transactions}", f, v)
            pipe.execute()
        finally:
            client.close()
        self.stats["redis"] = {"balance_keys": n_keys, "schedule_members": n_sched,
                               "schedule_key": SCHEDULE_R2 if self.r2 else SCHEDULE_R1,
                               "backup_queue_entries": len(self.backup_entries)}
        assert BACKUP_QUEUE == "backup_queue:{transactions}"

    def write_mongo(self) -> None:
        """Reference-entity metadata, the in-flight document, and EnsureIndexes' (wrongly named) collections."""
        onb_docs, txn_docs = self._mongo_ref_docs
        client: MongoClient[dict[str, Any]] = MongoClient(self.env.mongo_uri)
        try:
            onb = client[self.env.mongo_onboarding_db]
            txn = client[self.env.mongo_transaction_db]
            for name in ENSURE_INDEX_ONBOARDING:
                onb[name].create_index([("entity_id", 1)])
            for name in ENSURE_INDEX_TRANSACTION:
                txn[name].create_index([("entity_id", 1)])
            m = self.stats.setdefault("mongo", {})
            for coll, docs in onb_docs.items():
                onb[coll].insert_many(docs)
                m[f"onboarding.{coll}"] = len(docs)
            for coll, docs in txn_docs.items():
                txn[coll].insert_many(docs)
                m[f"transaction.{coll}"] = len(docs)
            if self.inflight_enabled:
                docs = self._inflight_pg[2]
                if docs:
                    txn["transaction"].insert_many(docs)
                    m["transaction.transaction"] = m.get("transaction.transaction", 0) + len(docs)
        finally:
            client.close()

    def run(self) -> dict[str, Any]:
        t0 = time.time()
        with psycopg.connect(self.env.onboarding_conninfo) as conn:
            if conn.execute("SELECT EXISTS (SELECT 1 FROM organization)").fetchone()[0]:  # type: ignore[index]
                raise ValueError("the onboarding database already holds a ledger; generate into empty stores")
        self.build_onboarding()
        self.write_onboarding()
        t1 = time.time()
        self.simulate()
        t2 = time.time()
        self.settle_pg_state()
        if self.inflight_enabled:
            self.build_inflight()
        self.write_balances_and_inflight()
        self.write_redis()
        self.write_mongo()
        t3 = time.time()
        st = self.stats
        st["revision"] = self.rev
        st["seed"] = self.seed
        st["operations"] = self.n_ops
        st["transactions"] = self.n_tx
        st["accounts"] = len(self.accounts)
        st["time_span"] = {"start": datetime.fromtimestamp(self.start_ms / 1000, UTC).isoformat(),
                           "settled_end": datetime.fromtimestamp(self.end_ms / 1000, UTC).isoformat(),
                           "now": self.now.isoformat()}
        st["organizations"] = [
            {"id": o.id, "ledgers": [{"id": led.id, "name": led.name, "routes": led.routes,
                                      "assets": [a.code for a in led.assets]} for led in o.ledgers]}
            for o in self.orgs]
        st["inflight"] = self.inflight_items
        st["seconds"] = {"onboarding": round(t1 - t0, 2), "transactions": round(t2 - t1, 2),
                         "finish": round(t3 - t2, 2), "total": round(t3 - t0, 2)}
        return st


def asset_led(gen: Generator, asset: Asset) -> Ledger:
    for led in gen.ledgers:
        if led.id == asset.ledger_id:
            return led
    raise KeyError(asset.ledger_id)


def generate(env: MidazEnvLike, *, operations: int, seed: int, days: int = 3, now: datetime | None = None,
             inflight: bool = True) -> dict[str, Any]:
    """Write a consistent Midaz ledger (plus, when `inflight`, the legitimate mid-write slice) into `env`'s
    empty stores and return its statistics: counts per table/collection/key family, time span, org/ledger ids,
    and the in-flight items (transaction ids, backup fields, balance ids)."""
    return Generator(env, operations=operations, seed=seed, days=days, now=now, inflight=inflight).run()


__all__ = ["Generator", "generate"]
