"""Check 4: referential integrity, within and across the onboarding and transaction databases (§6.4).

Same-database rules are SQL invariants (sql/*/referential/<db>__<kind>.sql, one GE SqlSuite per
database): account↔ledger organization, parent / portfolio / segment in another ledger, a live account
whose asset is not a live asset of its ledger, a live asset without its @external account, live
children of soft-deleted ledgers/organizations (warning), the account-type rule 6, and dangling
transaction / operation routes.

Cross-database rules (the two databases cannot be joined) stream extracts of both databases through
server-side cursors and compare them in bounded chunks, judged by DataFrame suites (expectations/
referential.py):
1. every live balance has its account (missing → error), with the same org, ledger, alias, asset and
   type (mismatch → error); an account soft-deleted under a live balance is a warning at R1 (Midaz v3
   does this by design) and an error at R2 (DESIGN §7);
2. every live account has exactly one live 'default' balance (missing / duplicate);
3. every transaction, operation, balance, asset_rate, operation_route and transaction_route row
   references an existing ledger owned by its organization_id (`unknown_ledger`, entity "<table>/<id>");
   rows with an unknown ledger are not judged again by rules 1, 4 and 5 (one root cause, one finding);
4. transaction.asset_code is an asset of its ledger (only soft-deleted → warning); asset_rate "from"/"to"
   are asset codes of its ledger;
5. operation.account_id names an account of the same org and ledger whose alias = account_alias
   (judged on the DISTINCT (account, org, ledger, alias) of the operations, entity = each operation).

Rules 1, 2 and 5 align sorted streams by account id in chunks (`range_chunks`): full scope streams every
account (ordered by id), every live balance and every distinct operation tuple (ordered by account_id);
window scope streams the ids written in the window and fetches each chunk's complete accounts and live
balances by id. Each chunk is classified with pandas (`classify_chunk`) and judged by the GE suite.
Rules 3 and 4 aggregate the references in SQL first (one row per ledger / asset) and only stream the
rows of references found bad. Ids are read as lower-case text (`text_uuids`).

WINDOW: a row is in the window when its UUIDv7 id time, updated_at or deleted_at is in [start, end) —
except balances, by id time or deleted_at only: a balance's updated_at moves with every amount sync and
never changes a field these rules compare. Operations and transactions are looked up by primary-key range
from `start - hard_grace` (rows persisted late by recovery keep their old id); non-UUIDv7 ids are judged
only in full scope. A finding is reported in window scope when the judged row, or the row it points at
(account, asset, account type, deleted parent), was written in the window. Full scope: everything.
In flight: a judged row, or the row it is compared with, written (updated_at, deleted_at or UUIDv7 time)
within the soft grace is skipped and counted in `in_flight`. created_at is never used (it can be
backdated).

Scale (measured on this 2-core box, 1M accounts + 1M balances + 2M operations): full scope ~60 s and
~270 MB above the interpreter (chunks of JUDGE_CHUNK rows per stream), window scope (1 h) ~15 s, most of
it the onboarding SQL's scans of `account` (no index serves updated_at).
"""

from __future__ import annotations

import bisect
import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciliation import config
from reconciliation.catalog import BY_KIND
from reconciliation.checks.base import CheckContext, add_rows, make_violation
from reconciliation.result import CheckResult
from reconciliation.sanitize import sanitize
from reconciliation.window import uuidv7_lower_bound

CHECK = "referential"
KEY_CHUNK = 20_000  # window scope: rows per window stream per chunk (ids fetched with = ANY)
JUDGE_CHUNK = 50_000  # full scope: rows per stream per chunk (one DataFrame validation)
ID_BATCH = 5_000  # ids per `= ANY(...)` lookup
FETCH = 10_000  # server-side cursor batch

_cursor_ids = itertools.count()


# ---------------------------------------------------------------------------------------------------
# parameters and SQL plumbing


def sql_params(ctx: CheckContext) -> dict[str, Any]:
    """The common SQL parameters plus the referential ones (documented in the SQL headers)."""
    p = ctx.sql_params()
    p["id_lookback"] = uuidv7_lower_bound(ctx.window.start - ctx.window.hard_grace)
    p["id_settled"] = uuidv7_lower_bound(ctx.window.settled_before)
    pairs = account_type_pairs()
    p["atv_orgs"] = [o for o, _ in pairs]
    p["atv_ledgers"] = [lg for _, lg in pairs]
    return p


def account_type_pairs() -> list[tuple[str, str]]:
    """R1: the well-formed (org, ledger) UUID pairs of MIDAZ_ACCOUNT_TYPE_VALIDATION (others are ignored)."""
    out = []
    for org, led in sorted(config.account_type_validation_pairs()):
        try:
            out.append((str(uuid.UUID(org.strip())), str(uuid.UUID(led.strip()))))
        except ValueError:
            continue
    return out


def _sql(ctx: CheckContext, name: str) -> str:
    """An extract query (sql/<rev|common>/referential/extract/<name>.sql)."""
    from reconciliation.checks.base import SQL_ROOT

    for folder in (ctx.revision, "common"):
        f = SQL_ROOT / folder / CHECK / "extract" / f"{name}.sql"
        if f.exists():
            return f.read_text()
    raise FileNotFoundError(f"no extract {name}.sql for {CHECK} at {ctx.revision}")


def stream_rows(conn: Any, sql: str, params: dict[str, Any], batch: int = FETCH) -> Iterator[tuple]:
    """Rows one by one through a uniquely named server-side cursor (several may be open at once)."""
    from reconciliation.stores.postgres import render

    with conn.cursor(name=f"recon_ref_{next(_cursor_ids)}") as cur:
        cur.itersize = batch
        cur.execute(render(sql, params))
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            yield from rows


def text_uuids(conn: Any) -> Any:
    """Load uuid columns as lower-case text on this connection: 2M uuid.UUID objects cost ~20 s of Python,
    and text compares (and sorts, like PostgreSQL's uuid order) at C speed."""
    from psycopg.types.string import TextLoader

    conn.adapters.register_loader("uuid", TextLoader)
    return conn


def fetch_all(conn: Any, sql: str, params: dict[str, Any]) -> list[tuple]:
    """A small keyed lookup (one chunk of ids)."""
    from reconciliation.stores.postgres import render

    with conn.cursor() as cur:
        cur.execute(render(sql, params))
        return cur.fetchall()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def range_chunks(*streams: Iterable[tuple], size: int) -> Iterator[list[list[tuple]]]:
    """Aligned chunks of streams sorted by their first column (the account id, as lower-case text).

    Each stream is buffered to about `size` rows, never ending inside a run of equal keys; a chunk then
    takes from every stream the rows whose key is <= K, K being the smallest last key among the streams
    still flowing. So every key's rows land in one chunk, and memory stays near `size` rows per stream (plus
    one run of equal keys). A stream that goes backwards is a programming error (an ORDER BY missing),
    never silently mis-aligned."""
    its = [iter(x) for x in streams]
    bufs: list[list[tuple]] = [[] for _ in its]
    ahead: list[tuple | None] = [None] * len(its)  # the first row of the next run, read but not buffered
    done = [False] * len(its)
    for i, it in enumerate(its):
        ahead[i] = next(it, None)
        done[i] = ahead[i] is None
    while True:
        for i, it in enumerate(its):
            while not done[i] and (len(bufs[i]) < size or (bufs[i] and ahead[i][0] == bufs[i][-1][0])):
                row = ahead[i]
                if bufs[i] and row[0] < bufs[i][-1][0]:
                    raise RuntimeError(f"{CHECK}: extract {i} is not ordered by its key")
                bufs[i].append(row)
                ahead[i] = next(it, None)
                done[i] = ahead[i] is None
        if not any(bufs):
            return
        limits = [buf[-1][0] for i, buf in enumerate(bufs) if buf and not done[i]]
        bound = min(limits) if limits else None
        chunk = []
        for i, buf in enumerate(bufs):
            cut = len(buf) if bound is None else bisect.bisect_right(buf, bound, key=lambda r: r[0])
            chunk.append(buf[:cut])
            bufs[i] = buf[cut:]
        yield chunk


# ---------------------------------------------------------------------------------------------------
# the rows compared across databases (one chunk of account ids at a time, as DataFrames)

ACCOUNT_COLS = ("id", "organization_id", "ledger_id", "alias", "asset_code", "type", "deleted", "young")
BALANCE_COLS = ("account_id", "id", "organization_id", "ledger_id", "alias", "asset_code", "account_type", "key",
                "young")
OP_COLS = ("account_id", "organization_id", "ledger_id", "alias", "n_settled", "n_young")


def frame(rows: list[tuple], cols: tuple[str, ...], **flags: Any) -> Any:
    """A chunk's rows as a DataFrame of object columns (ids stay exact text; no dtype inference), plus flags."""
    import pandas as pd

    df = pd.DataFrame(rows or None, columns=list(cols), dtype=object)
    for name, value in flags.items():
        df[name] = value
    return df


def _ledger_keys(df: Any) -> Any:
    return df["organization_id"].astype(str) + "/" + df["ledger_id"].astype(str)


def _classes(df: Any, values: Any) -> Any:
    """A class column of plain str / None (object dtype: pandas would turn None into NaN for strings)."""
    import numpy as np
    import pandas as pd

    return pd.Series(np.asarray(values, dtype=object), index=df.index, dtype=object)


def classify_chunk(acc: Any, bal: Any, ops: Any, bad_balance: set[str], bad_operation: set[str]) -> tuple[Any, Any, Any]:
    """Rules 1, 2 and 5 for one chunk, vectorised. Inputs (DataFrames):
    - acc: ACCOUNT_COLS + in_scope (account written in the window) + scope_balance (one of its balances was
      created or deleted in the window);
    - bal: the chunk's live balances, BALANCE_COLS + in_scope;
    - ops: OP_COLS (all in scope);
    - bad_*: "<org>/<ledger>" pairs rule 3 found unknown for that table (not judged again here).
    Returns the judged balances (columns balance_account, balance_account_live), live accounts
    (default_balance, n_default) and operation tuples (operation_account), each with its class columns.
    In flight = the row or the account it is compared with was written within the soft grace."""
    import numpy as np

    a = acc.add_prefix("a_")
    # rule 1: every judged live balance against its account
    m = bal.merge(a, how="left", left_on="account_id", right_on="a_id")
    m = m[m["in_scope"].astype(bool) | m["a_in_scope"].eq(True)].copy()
    missing = m["a_id"].isna()
    skipped = _ledger_keys(m).isin(bad_balance)
    young = m["young"].astype(bool)
    a_young = m["a_young"].eq(True)
    differs = ~missing & (
        (m["organization_id"] != m["a_organization_id"]) | (m["ledger_id"] != m["a_ledger_id"])
        | (m["alias"] != m["a_alias"]) | (m["asset_code"] != m["a_asset_code"]) | (m["account_type"] != m["a_type"])
    )
    m["balance_account"] = _classes(m, np.select(
        [young, skipped, missing, a_young, differs],
        ["in_flight", "skipped", "balance_account_missing", "in_flight", "balance_account_mismatch"], "ok"))
    unjudged = young | skipped | missing | a_young
    m["balance_account_live"] = _classes(m, np.where(
        unjudged, None, np.where(m["a_deleted"].eq(True), "balance_account_deleted", "ok")))
    # rule 2: every live account in scope has exactly one live default balance
    defaults = bal[bal["key"] == "default"]
    per_account = defaults.groupby("account_id").agg(n_default=("id", "size"), any_young=("young", "any"))
    live = acc[~acc["deleted"].astype(bool) & (acc["in_scope"].astype(bool) | acc["scope_balance"].astype(bool))]
    live = live.join(per_account, on="id")
    n = live["n_default"].fillna(0).astype(int)
    live = live.assign(n_default=n)
    live["default_balance"] = _classes(live, np.select(
        [live["young"].astype(bool), n == 1, live["any_young"].eq(True), n == 0],
        ["in_flight", "ok", "in_flight", "account_default_balance_missing"], "account_default_balance_duplicate"))
    # rule 5: every operation tuple against its account
    o = ops.merge(a, how="left", left_on="account_id", right_on="a_id")
    o_missing = o["a_id"].isna()
    o_differs = o_missing | (o["organization_id"] != o["a_organization_id"]) | (
        o["ledger_id"] != o["a_ledger_id"]) | (o["alias"] != o["a_alias"])
    o["operation_account"] = _classes(o, np.select(
        [_ledger_keys(o).isin(bad_operation), o["n_settled"] == 0, o_differs],
        ["skipped", "in_flight", "operation_account_mismatch"], "ok"))
    return m, live, o


# ---------------------------------------------------------------------------------------------------
# emitting findings with exact counts and bounded samples


def _room(result: CheckResult) -> int:
    return max(0, result.max_samples - len(result.samples))


def _count_only(result: CheckResult, kind: str, n: int, severity: str | None = None) -> None:
    """Findings beyond the samples: counted exactly, not kept."""
    if n <= 0:
        return
    sev = severity or BY_KIND[kind].severity
    if sev == "error":
        result.violations += n
    elif sev == "warning":
        result.warnings += n
    result.truncated = True


def _entity_fields(table: str, row_id: Any) -> dict[str, Any]:
    name = {"transaction": "transaction_id", "operation": "operation_id", "balance": "balance_id"}.get(table)
    return {name: row_id} if name else {"entity_id": row_id}


@dataclass
class Scan:
    """Per-run state shared by the rule implementations."""

    ctx: CheckContext
    params: dict[str, Any]
    result: CheckResult
    onb: Any
    tx: Any
    bad_pairs: set[tuple[str, str, str]] = field(default_factory=set)  # (table, org, ledger) of rule 3
    ref_suite: Any = None
    join_suite: Any = None

    def bad(self, table: str, org: str, ledger: str) -> bool:
        return (table, org, ledger) in self.bad_pairs

    def bad_keys(self, table: str) -> set[str]:
        """"<org>/<ledger>" pairs of one table whose ledger rule 3 found unknown."""
        return {f"{org}/{lg}" for t, org, lg in self.bad_pairs if t == table}


def _ref_frame(column: str, values: list[str]) -> Any:
    import pandas as pd

    from reconciliation.expectations.referential import REF_COLUMNS

    return pd.DataFrame({c: (values if c == column else [None] * len(values)) for c in REF_COLUMNS}, dtype=object)


def _judge_refs(scan: Scan, column: str, classes: list[str]) -> list[int]:
    """Indices GE finds unacceptable in one reference column."""
    if not classes:
        return []
    return scan.ref_suite.validate(_ref_frame(column, classes)).get(column, [])


# ---- rule 3 -------------------------------------------------------------------------------------------


def ledger_references(scan: Scan) -> None:
    """Rule 3: aggregate the (table, org, ledger) references, judge them, stream the rows of bad ones."""
    pairs = [(r[0], r[1], r[2]) for r in stream_rows(scan.tx, _sql(scan.ctx, "transaction__ledger_pairs"), scan.params)]
    scan.result.metrics["ledger_references"] = len(pairs)
    ledgers: dict[str, str] = {}
    for batch in batched(sorted({p[2] for p in pairs}), ID_BATCH):
        for lid, org, _deleted in fetch_all(scan.onb, _sql(scan.ctx, "onboarding__ledgers_by_id"), {"ids": batch}):
            ledgers[lid] = org
    classes = ["ok" if ledgers.get(lg) == org else "unknown_ledger" for _t, org, lg in pairs]
    bad = [pairs[i] for i in _judge_refs(scan, "ledger_ref", classes)]
    scan.bad_pairs = set(bad)
    if not bad:
        return
    params = {
        **scan.params,
        "k_tables": [b[0] for b in bad],
        "k_orgs": [str(b[1]) for b in bad],
        "k_ledgers": [str(b[2]) for b in bad],
    }
    for tbl, row_id, org, lg, settled in stream_rows(scan.tx, _sql(scan.ctx, "transaction__ledger_pair_rows"), params):
        if not settled:
            scan.result.in_flight += 1
            continue
        entity = f"{tbl}/{row_id}"
        if _room(scan.result):
            state = "no such ledger" if lg not in ledgers else f"ledger belongs to organization {ledgers[lg]}"
            scan.result.add(make_violation(
                CHECK, "unknown_ledger", entity, organization_id=org, ledger_id=lg,
                table=tbl, ledger_state=state, **_entity_fields(tbl, row_id),
            ))
        else:
            _count_only(scan.result, "unknown_ledger", 1)


# ---- rule 4 -------------------------------------------------------------------------------------------


def _asset_codes(scan: Scan, ledger_ids: Iterable[str]) -> dict[tuple[str, str, str], bool]:
    codes: dict[tuple[str, str, str], bool] = {}
    for batch in batched(sorted(set(ledger_ids)), ID_BATCH):
        for org, lg, code, any_live in fetch_all(scan.onb, _sql(scan.ctx, "onboarding__asset_codes"), {"ids": batch}):
            codes[(org, lg, code)] = bool(any_live)
    return codes


def transaction_assets(scan: Scan) -> None:
    """Rule 4a: transaction.asset_code is a live asset of its ledger (soft-deleted only → warning)."""
    triples = []
    for org, lg, code, n_settled, n_young in stream_rows(
        scan.tx, _sql(scan.ctx, "transaction__transaction_assets"), scan.params
    ):
        scan.result.in_flight += int(n_young)
        if not scan.bad("transaction", org, lg) and n_settled:
            triples.append((org, lg, code, int(n_settled)))
    codes = _asset_codes(scan, (t[1] for t in triples))
    classes = []
    for org, lg, code, _n in triples:
        live = codes.get((org, lg, code))
        classes.append("ok" if live else ("transaction_asset_deleted" if live is False else "transaction_asset_unknown"))
    bad_idx = _judge_refs(scan, "transaction_asset", classes)
    for kind in ("transaction_asset_unknown", "transaction_asset_deleted"):
        bad = [triples[i] for i in bad_idx if classes[i] == kind]
        if not bad:
            continue
        total = sum(t[3] for t in bad)
        sampled = 0
        room = _room(scan.result)
        if room:
            params = {
                **scan.params,
                "k_orgs": [str(t[0]) for t in bad],
                "k_ledgers": [str(t[1]) for t in bad],
                "k_codes": [t[2] for t in bad],
                "max_rows": room,
            }
            for tid, org, lg, code in fetch_all(scan.tx, _sql(scan.ctx, "transaction__transaction_asset_rows"), params):
                scan.result.add(make_violation(
                    CHECK, kind, str(tid), transaction_id=tid, organization_id=org, ledger_id=lg, asset_code=code,
                ))
                sampled += 1
        _count_only(scan.result, kind, total - sampled)


def asset_rates(scan: Scan) -> None:
    """Rule 4b: asset_rate "from" and "to" are asset codes (any asset row) of the rate's ledger."""
    rows = stream_rows(scan.tx, _sql(scan.ctx, "transaction__asset_rates"), scan.params)
    for chunk in batched(rows, JUDGE_CHUNK):
        codes = _asset_codes(scan, (r[2] for r in chunk))
        classes = []
        for _rid, org, lg, frm, to, settled in chunk:
            if scan.bad("asset_rate", org, lg):
                classes.append("skipped")
            elif not settled:
                classes.append("in_flight")
                scan.result.in_flight += 1
            elif (org, lg, frm) in codes and (org, lg, to) in codes:
                classes.append("ok")
            else:
                classes.append("asset_rate_asset_unknown")
        for i in _judge_refs(scan, "asset_rate_code", classes):
            rid, org, lg, frm, to, _settled = chunk[i]
            unknown = [c for c in (frm, to) if (org, lg, c) not in codes]
            if _room(scan.result):
                scan.result.add(make_violation(
                    CHECK, classes[i], str(rid), entity_id=rid, organization_id=org, ledger_id=lg,
                    **{"from": frm, "to": to, "unknown_codes": unknown},
                ))
            else:
                _count_only(scan.result, classes[i], 1)


# ---- rules 1, 2, 5 ------------------------------------------------------------------------------------


class AccountJudge:
    """Rules 1, 2 and 5, chunk by chunk: classify (pandas), let the GE suite judge, emit the findings."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.judged = {"balances": 0, "accounts": 0, "operation_tuples": 0}
        self.chunks = 0
        self.bad_balance = scan.bad_keys("balance")
        self.bad_operation = scan.bad_keys("operation")

    def judge(self, acc: Any, bal: Any, ops: Any) -> None:
        import pandas as pd

        from reconciliation.expectations.referential import ACCOUNT_JOIN_COLUMNS

        m, live, o = classify_chunk(acc, bal, ops, self.bad_balance, self.bad_operation)
        self.chunks += 1
        self.judged["balances"] += len(m)
        self.judged["accounts"] += len(live)
        self.judged["operation_tuples"] += len(o)
        result = self.scan.result
        result.in_flight += int((m["balance_account"] == "in_flight").sum())
        result.in_flight += int((live["default_balance"] == "in_flight").sum()) + int(o["n_young"].sum())
        parts = [(m, ("balance_account", "balance_account_live")), (live, ("default_balance",)),
                 (o, ("operation_account",))]
        cols: dict[str, list[Any]] = {c: [] for c in ACCOUNT_JOIN_COLUMNS}
        origin: list[tuple[int, int]] = []
        for p, (df, own) in enumerate(parts):
            for c in ACCOUNT_JOIN_COLUMNS:
                cols[c].extend(df[c].tolist() if c in own else [None] * len(df))
            origin.extend((p, i) for i in range(len(df)))
        if not origin:
            return
        unexpected = self.scan.join_suite.validate(pd.DataFrame(cols, dtype=object))
        bad_ops = []
        for column, indices in unexpected.items():
            for k in indices:
                p, i = origin[k]
                row = parts[p][0].iloc[i]
                kind = row[column]
                if p == 0:
                    self._balance_finding(kind, row)
                elif p == 1:
                    self._account_finding(kind, row, bal)
                else:
                    bad_ops.append(row)
        if bad_ops:
            self._operation_findings(bad_ops)

    def _emit(self, kind: str, entity: str, severity: str | None = None, **fields: Any) -> None:
        if _room(self.scan.result):
            self.scan.result.add(make_violation(CHECK, kind, entity, severity=severity, **fields))
        else:
            _count_only(self.scan.result, kind, 1, severity)

    def _balance_finding(self, kind: str, row: Any) -> None:
        fields: dict[str, Any] = {
            "balance_id": row["id"], "account_id": row["account_id"], "organization_id": row["organization_id"],
            "ledger_id": row["ledger_id"], "alias": row["alias"], "key": row["key"],
        }
        severity = None
        if kind == "balance_account_deleted":
            severity = "error" if self.scan.ctx.revision == "r2" else "warning"
        elif kind == "balance_account_mismatch":
            pairs = (("organization_id", "a_organization_id"), ("ledger_id", "a_ledger_id"), ("alias", "a_alias"),
                     ("asset_code", "a_asset_code"), ("account_type", "a_type"))
            fields["mismatch"] = {
                name: {"balance": row[name], "account": row[other]} for name, other in pairs if row[name] != row[other]
            }
        self._emit(kind, str(row["id"]), severity, **fields)

    def _account_finding(self, kind: str, row: Any, bal: Any) -> None:
        defaults = bal[(bal["account_id"] == row["id"]) & (bal["key"] == "default")]["id"].tolist()
        self._emit(
            kind, str(row["id"]), None, account_id=row["id"], organization_id=row["organization_id"],
            ledger_id=row["ledger_id"], alias=row["alias"], default_balances=defaults[:20],
            count=int(row["n_default"]),
        )

    def _operation_findings(self, bad: list[Any]) -> None:
        """Rule 5: each bad tuple stands for n_settled operations; sample them, count the rest exactly."""
        total = sum(int(r["n_settled"]) for r in bad)
        sampled = 0
        evidence = {}
        for r in bad:
            acc = None if r["a_id"] is None or r["a_id"] != r["a_id"] else {
                "organization_id": r["a_organization_id"], "ledger_id": r["a_ledger_id"], "alias": r["a_alias"]}
            evidence[(r["account_id"], r["organization_id"], r["ledger_id"], r["alias"])] = acc or "missing"
        for keys in batched(list(evidence), ID_BATCH):
            room = _room(self.scan.result)
            if not room:
                break
            params = {
                **self.scan.params,
                "k_accounts": [k[0] for k in keys],
                "k_orgs": [k[1] for k in keys],
                "k_ledgers": [k[2] for k in keys],
                "k_aliases": [k[3] for k in keys],
                "max_rows": room,
            }
            for oid, tid, aid, org, lg, alias in fetch_all(
                self.scan.tx, _sql(self.scan.ctx, "transaction__operation_rows"), params
            ):
                self.scan.result.add(make_violation(
                    CHECK, "operation_account_mismatch", str(oid), operation_id=oid, transaction_id=tid,
                    account_id=aid, organization_id=org, ledger_id=lg, account_alias=alias,
                    account=evidence.get((aid, org, lg, alias)),
                ))
                sampled += 1
        _count_only(self.scan.result, "operation_account_mismatch", total - sampled)


def accounts_full(scan: Scan, judge: AccountJudge) -> None:
    """Full scope: every account, live balance and operation tuple, aligned by account id in chunks."""
    p = scan.params
    streams = (
        stream_rows(scan.onb, _sql(scan.ctx, "onboarding__accounts"), p),
        stream_rows(scan.tx, _sql(scan.ctx, "transaction__balances"), p),
        stream_rows(scan.tx, _sql(scan.ctx, "transaction__operation_accounts"), p),
    )
    for accs, bals, ops in range_chunks(*streams, size=JUDGE_CHUNK):
        judge.judge(
            frame(accs, ACCOUNT_COLS, in_scope=True, scope_balance=True),
            frame(bals, BALANCE_COLS, in_scope=True),
            frame(ops, OP_COLS),
        )


def accounts_window(scan: Scan, judge: AccountJudge) -> None:
    """Window scope: the account ids written in the window (accounts, balances created or deleted, operation
    tuples), in aligned chunks; each chunk's complete accounts and live balances are then fetched by id."""
    p = scan.params
    streams = (
        stream_rows(scan.onb, _sql(scan.ctx, "onboarding__window_accounts"), p),
        stream_rows(scan.tx, _sql(scan.ctx, "transaction__window_balances"), p),
        stream_rows(scan.tx, _sql(scan.ctx, "transaction__operation_accounts"), p),
    )
    for win_accs, win_bals, ops in range_chunks(*streams, size=KEY_CHUNK):
        acc_in = {r[0] for r in win_accs}
        bal_accounts = {r[0] for r in win_bals}
        bal_in = {r[1] for r in win_bals}
        ids = sorted(acc_in | bal_accounts | {r[0] for r in ops})
        accs = fetch_all(scan.onb, _sql(scan.ctx, "onboarding__accounts_by_id"), {**p, "ids": ids})
        bals = fetch_all(scan.tx, _sql(scan.ctx, "transaction__balances_by_account"), {**p, "ids": ids})
        judge.judge(
            frame(accs, ACCOUNT_COLS, in_scope=[r[0] in acc_in for r in accs],
                  scope_balance=[r[0] in bal_accounts for r in accs]),
            frame(bals, BALANCE_COLS, in_scope=[r[1] in bal_in for r in bals]),
            frame(ops, OP_COLS),
        )


def cross_database(scan: Scan) -> None:
    """Rules 3 → 4 → (1, 2, 5): rule 3 first, so later rules skip rows whose ledger is unknown."""
    from reconciliation.expectations.referential import account_join_suite, reference_suite

    timings = scan.result.metrics.setdefault("seconds_by_step", {})
    scan.ref_suite = reference_suite()
    scan.join_suite = account_join_suite()
    steps: tuple[tuple[str, Callable[[Scan], None]], ...] = (
        ("ledger_references", ledger_references),
        ("transaction_assets", transaction_assets),
        ("asset_rates", asset_rates),
    )
    for name, step in steps:
        t0 = time.monotonic()
        step(scan)
        timings[name] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    judge = AccountJudge(scan)
    (accounts_full if scan.ctx.window.is_full else accounts_window)(scan, judge)
    timings["accounts_balances_operations"] = round(time.monotonic() - t0, 3)
    scan.result.metrics["judged"] = judge.judged
    scan.result.metrics["judge_chunks"] = judge.chunks


def run_sql_invariants(ctx: CheckContext, params: dict[str, Any], result: CheckResult) -> None:
    """The same-database rules: every invariant file of the check, one GE SqlSuite per database."""
    from reconciliation.checks.ge import SqlInvariant, SqlSuite
    from reconciliation.stores.postgres import read_only_uri, render

    for db in ("onboarding", "transaction"):
        invariants = []
        for stem, path in ctx.sql_files(CHECK, db).items():
            kind = stem.split("__")[1]
            if kind not in BY_KIND or BY_KIND[kind].check != CHECK:
                raise ValueError(f"{path.name}: kind {kind!r} is not a {CHECK} kind of catalog.py")
            invariants.append(SqlInvariant(kind=stem, sql=render(path.read_text(), params)))
        if not invariants:
            continue
        t0 = time.monotonic()
        outcomes = SqlSuite(f"{CHECK}_{db}", read_only_uri(ctx.conn_id(db)), invariants, ctx.params.max_samples).run()
        result.metrics[f"{db}_sql_seconds"] = round(time.monotonic() - t0, 3)
        for stem, outcome in outcomes.items():
            if outcome.exception:
                raise RuntimeError(sanitize(f"{CHECK}: {stem} could not be evaluated: {outcome.exception}"))
            room = _room(result)
            add_rows(result, CHECK, stem.split("__")[1], outcome.rows[:room], outcome.total)


def run(ctx: CheckContext) -> CheckResult:
    """Run every referential rule; see the module docstring for scope, window and in-flight rules."""
    from reconciliation.stores.postgres import read_only

    result = ctx.new_result(CHECK)
    t0 = time.monotonic()
    params = sql_params(ctx)
    run_sql_invariants(ctx, params, result)
    with read_only(ctx.onboarding_conn_id) as onb, read_only(ctx.transaction_conn_id) as tx:
        cross_database(Scan(ctx, params, result, text_uuids(onb), text_uuids(tx)))
    result.metrics["account_type_validation_pairs"] = len(account_type_pairs()) if ctx.revision == "r1" else None
    result.metrics["seconds"] = round(time.monotonic() - t0, 3)
    return result.finish()
