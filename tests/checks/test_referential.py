"""Check 6.4 (referential integrity) against real servers: a generated ledger with planted faults of every
kind the check reports, the fault injector's manifest, window scope, both revisions, chunk boundaries,
bounded samples, and the classification / merge edge cases.

Why planted faults as well as the manifest: every rule of §6.4 (and its in-flight and window boundaries)
must be proven, not only the faults the injector happens to plant. Each planted fault is a new row written
at a chosen time: IN the test window, OUT of it (after it, still settled) or YOUNG (inside the soft grace:
in flight, never reported).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from reconciliation import config
from reconciliation.checks import referential as ref
from reconciliation.demo.faults import inject
from reconciliation.demo.gen_model import uuid7
from reconciliation.demo.generator import generate
from reconciliation.demo.manifest import Manifest
from reconciliation.demo.servers import LocalStack, MidazEnv
from tests.checks.conftest import check_once, reported

CHECK = "referential"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OPS = 3000
WIN_START = datetime(2026, 2, 28, tzinfo=UTC)
WIN_END = WIN_START + timedelta(days=1)
IN = WIN_START + timedelta(hours=9)
OUT = WIN_END + timedelta(hours=9)  # after the window, long settled
YOUNG = NOW - timedelta(minutes=3)  # inside the 15-minute soft grace


# ------------------------------------------------------------------------------------------------ planting


@dataclass
class Scenario:
    env: MidazEnv
    revision: str
    full: set[tuple[str, str, str]] = field(default_factory=set)
    window: set[tuple[str, str, str]] = field(default_factory=set)
    severities: dict[tuple[str, str, str], str] = field(default_factory=dict)
    young_rows: int = 0
    settings: dict[str, str] = field(default_factory=dict)

    def expect(self, kind: str, entity: str, at: datetime, severity: str = "error") -> None:
        if at == YOUNG:
            return
        key = (CHECK, kind, str(entity))
        self.full.add(key)
        self.severities[key] = severity
        if WIN_START <= at < WIN_END:
            self.window.add(key)


class Planter:
    """Writes planted rows into a generated Midaz ledger (psycopg, autocommit)."""

    def __init__(self, env: MidazEnv, seed: int) -> None:
        self.env = env
        self.rng = random.Random(seed)
        self.onb = psycopg.connect(env.onboarding_conninfo, autocommit=True)
        self.tx = psycopg.connect(env.transaction_conninfo, autocommit=True)
        self.r2 = env.revision == "r2"
        self.serial = 0
        ledgers = self.onb.execute(
            "SELECT l.id, l.organization_id FROM ledger l ORDER BY l.created_at, l.id").fetchall()
        self.ledgers = [(str(lid), str(org)) for lid, org in ledgers]
        self.codes = {
            lid: [r[0] for r in self.onb.execute(
                "SELECT code FROM asset WHERE ledger_id = %s AND deleted_at IS NULL ORDER BY code", (lid,))]
            for lid, _ in self.ledgers
        }

    def close(self) -> None:
        self.onb.close()
        self.tx.close()

    def id(self, at: datetime) -> str:
        return uuid7(int(at.timestamp() * 1000), self.rng)

    def ledger(self, i: int) -> tuple[str, str, str]:
        lid, org = self.ledgers[i]
        return org, lid, self.codes[lid][0]

    def account(self, at: datetime, org: str, lid: str, code: str, *, typ: str = "deposit", alias: str | None = None,
                parent: str | None = None, portfolio: str | None = None, segment: str | None = None,
                deleted: datetime | None = None) -> tuple[str, str]:
        self.serial += 1
        aid = self.id(at)
        alias = alias or f"@planted-{self.serial:04d}"
        cols = ("id", "name", "parent_account_id", "asset_code", "organization_id", "ledger_id", "portfolio_id",
                "segment_id", "status", "alias", "type", "created_at", "updated_at", "deleted_at")
        vals = (aid, "planted", parent, code, org, lid, portfolio, segment, "ACTIVE", alias, typ, at,
                deleted or at, deleted)
        self.onb.execute(f"INSERT INTO account ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
        return aid, alias

    def balance(self, at: datetime, org: str, lid: str, account_id: str, alias: str, code: str, *,
                typ: str = "deposit", key: str = "default") -> str:
        bid = self.id(at)
        cols = ["id", "organization_id", "ledger_id", "account_id", "alias", "asset_code", "available", "on_hold",
                "version", "account_type", "allow_sending", "allow_receiving", "created_at", "updated_at", "key"]
        vals: list[Any] = [bid, org, lid, account_id, alias, code, 0, 0, 0, typ, True, True, at, at, key]
        self.tx.execute(f"INSERT INTO balance ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
        return bid

    def account_with_balance(self, at: datetime, org: str, lid: str, code: str, **kw: Any) -> tuple[str, str, str]:
        aid, alias = self.account(at, org, lid, code, **kw)
        return aid, alias, self.balance(at, org, lid, aid, alias, code, typ=kw.get("typ", "deposit"))

    def transaction(self, at: datetime, org: str, lid: str, code: str, *, route: str | None = None,
                    route_id: str | None = None) -> str:
        tid = self.id(at)
        cols = ["id", "description", "status", "amount", "asset_code", "chart_of_accounts_group_name", "ledger_id",
                "organization_id", "created_at", "updated_at", "route"]
        vals: list[Any] = [tid, "planted", "APPROVED", 1, code, "", lid, org, at, at, route]
        if route_id is not None:
            cols.append("route_id")
            vals.append(route_id)
        self.tx.execute(f'INSERT INTO "transaction" ({", ".join(cols)}) VALUES ({", ".join(["%s"] * len(vals))})', vals)
        return tid

    def operation(self, at: datetime, tid: str, org: str, lid: str, code: str, account_id: str, alias: str,
                  balance_id: str, *, route: str | None = None, route_id: str | None = None) -> str:
        oid = self.id(at)
        cols = ["id", "transaction_id", "description", "type", "asset_code", "amount", "status", "account_id",
                "account_alias", "balance_id", "chart_of_accounts", "organization_id", "ledger_id", "created_at",
                "updated_at", "route"]
        vals: list[Any] = [oid, tid, "planted", "CREDIT", code, 1, "", account_id, alias, balance_id, "", org, lid,
                           at, at, route]
        if route_id is not None:
            cols.append("route_id")
            vals.append(route_id)
        self.tx.execute(f"INSERT INTO operation ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})", vals)
        return oid

    def asset(self, at: datetime, org: str, lid: str, code: str, *, deleted: datetime | None = None) -> str:
        aid = self.id(at)
        self.onb.execute(
            "INSERT INTO asset (id, type, code, status, ledger_id, organization_id, created_at, updated_at, deleted_at)"
            " VALUES (%s, 'currency', %s, 'ACTIVE', %s, %s, %s, %s, %s)",
            (aid, code, lid, org, at, deleted or at, deleted))
        return aid

    def asset_rate(self, at: datetime, org: str, lid: str, frm: str, to: str) -> str:
        rid = self.id(at)
        self.tx.execute(
            'INSERT INTO asset_rate (id, organization_id, ledger_id, external_id, "from", "to", rate, rate_scale,'
            " source, ttl, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 100, 2, 'test', 3600, %s, %s)",
            (rid, org, lid, self.id(at), frm, to, at, at))
        return rid


def plant_faults(env: MidazEnv, revision: str, seed: int = 5) -> Scenario:
    """One planted row set per reported kind, IN and OUT of the window, plus YOUNG (in-flight) variants."""
    sc = Scenario(env, revision)
    p = Planter(env, seed)
    r2 = revision == "r2"
    try:
        org1, l1, code1 = p.ledger(0)
        org2, l3, code3 = p.ledger(2)  # a ledger of the other organization
        _, l2, code2 = p.ledger(1)
        other_account = p.onb.execute("SELECT id FROM account WHERE ledger_id = %s LIMIT 1", (l3,)).fetchone()[0]
        other_portfolio = p.onb.execute("SELECT id FROM portfolio WHERE ledger_id = %s", (l3,)).fetchone()[0]
        other_segment = p.onb.execute("SELECT id FROM segment WHERE ledger_id = %s", (l3,)).fetchone()[0]
        a_tx = p.tx.execute('SELECT id FROM "transaction" WHERE ledger_id = %s AND status = %s LIMIT 1',
                            (l1, "APPROVED")).fetchone()[0]

        for at in (IN, OUT, YOUNG):
            # account in another organization than its ledger (its asset is found by ledger: one root cause),
            # without a balance (a balance under that organization would be an unknown_ledger pair)
            aid, _ = p.account(at, org2, l1, code1)
            sc.expect("account_ledger_org_mismatch", aid, at)
            sc.expect("account_default_balance_missing", aid, at)
            # parent account / portfolio / segment in another ledger
            aid, _, _ = p.account_with_balance(at, org1, l1, code1, parent=str(other_account))
            sc.expect("account_parent_mismatch", aid, at)
            aid, _, _ = p.account_with_balance(at, org1, l1, code1, portfolio=str(other_portfolio))
            sc.expect("account_portfolio_mismatch", aid, at)
            aid, _, _ = p.account_with_balance(at, org1, l1, code1, segment=str(other_segment))
            sc.expect("account_segment_mismatch", aid, at)
            # live account whose asset is not an asset of its ledger
            aid, _, _ = p.account_with_balance(at, org1, l1, "JPY")
            sc.expect("account_asset_missing", aid, at)
            # live asset without its @external account
            code = {IN: "GBP", OUT: "CHF", YOUNG: "AUD"}[at]
            p.asset(at, org1, l1, code)
            sc.expect("asset_without_external_account", f"{org1}/{l1}/{code}", at)
            # a live segment of a soft-deleted ledger (warning)
            dead = p.id(at)
            p.onb.execute("INSERT INTO ledger (id, name, organization_id, status, created_at, updated_at, deleted_at)"
                          " VALUES (%s, 'dead', %s, 'ACTIVE', %s, %s, %s)", (dead, org1, at, at, at))
            seg = p.id(at)
            p.onb.execute("INSERT INTO segment (id, name, ledger_id, organization_id, status, created_at, updated_at)"
                          " VALUES (%s, 'orphan', %s, %s, 'ACTIVE', %s, %s)", (seg, dead, org1, at, at))
            sc.expect("live_child_of_deleted_parent", f"segment/{seg}", at, "warning")
            # dangling routes
            tid = p.transaction(at, org1, l1, code1, route=p.id(at))
            sc.expect("transaction_route_missing", tid, at)
            acc, alias, bal = p.account_with_balance(at, org1, l1, code1)
            oid = p.operation(at, a_tx, org1, l1, code1, acc, alias, bal, route=p.id(at))
            sc.expect("operation_route_missing", oid, at)
            if r2:
                tid = p.transaction(at, org1, l1, code1, route_id=p.id(at))
                sc.expect("transaction_route_missing", tid, at)
                oid = p.operation(at, a_tx, org1, l1, code1, acc, alias, bal, route_id=p.id(at))
                sc.expect("operation_route_missing", oid, at)
            # rule 1: balance without account / of a deleted account / disagreeing with its account
            bid = p.balance(at, org1, l1, p.id(at), "@ghost", code1)
            sc.expect("balance_account_missing", bid, at)
            aid, alias, bid = p.account_with_balance(at, org1, l1, code1, deleted=at)
            sc.expect("balance_account_deleted", bid, at, "error" if r2 else "warning")
            aid, alias = p.account(at, org1, l1, code1)
            bid = p.balance(at, org1, l1, aid, alias + "-other", code1)
            sc.expect("balance_account_mismatch", bid, at)
            if at == OUT:  # an amount sync inside the window does not bring a balance into the window
                p.tx.execute("UPDATE balance SET updated_at = %s WHERE id = %s", (IN, bid))
            # rule 2: no default balance / two of them (R2's unique index forces another asset on the second)
            aid, _ = p.account(at, org1, l1, code1)
            sc.expect("account_default_balance_missing", aid, at)
            aid, alias, _ = p.account_with_balance(at, org1, l1, code1)
            second = p.balance(at, org1, l1, aid, alias, "XAU" if r2 else code1)
            sc.expect("account_default_balance_duplicate", aid, at)
            if r2:
                sc.expect("balance_account_mismatch", second, at)
            # rule 3: rows of an unknown ledger (not judged again by rules 1 and 4)
            rid = p.asset_rate(at, org1, p.id(at), "USD", "NOPE")
            sc.expect("unknown_ledger", f"asset_rate/{rid}", at)
            owner = p.onb.execute("SELECT organization_id FROM ledger WHERE id = %s", (l2,)).fetchone()[0]
            assert str(owner) == org1 != org2
            bid = p.balance(at, org2, l2, acc, alias, code1, key="wrong-org")
            sc.expect("unknown_ledger", f"balance/{bid}", at)
            tid = p.transaction(at, org1, p.id(at), "ZZZ")
            sc.expect("unknown_ledger", f"transaction/{tid}", at)
            # rule 4: unknown / soft-deleted transaction asset; asset rate with an unknown code
            tid = p.transaction(at, org1, l1, "ZZZ")
            sc.expect("transaction_asset_unknown", tid, at)
            del_code = {IN: "SEK", OUT: "NOK", YOUNG: "DKK"}[at]
            p.asset(at - timedelta(hours=1), org1, l1, del_code, deleted=at - timedelta(minutes=30))
            tid = p.transaction(at, org1, l1, del_code)
            sc.expect("transaction_asset_deleted", tid, at, "warning")
            rid = p.asset_rate(at, org1, l1, code1, "XYZ")
            sc.expect("asset_rate_asset_unknown", rid, at)
            # rule 5: an operation whose alias is not its account's
            oid = p.operation(at, a_tx, org1, l1, code1, acc, alias + "-x", bal)
            sc.expect("operation_account_mismatch", oid, at)
            # rule 6: an account type no account_type row defines (ledger 2 validates account types)
            aid, _, _ = p.account_with_balance(at, org1, l2, code2, typ="premium")
            sc.expect("account_type_unknown", aid, at)
        # rule 6 settings: R1 env list, R2 ledger settings
        if r2:
            p.onb.execute("""UPDATE ledger SET settings = settings || '{"accounting": {"validateAccountType": true}}'
                             WHERE id = %s""", (l2,))
        else:
            sc.settings[config.ENV_ACCOUNT_TYPE_VALIDATION] = f"{org1}:{l2}"
        p.tx.execute("ANALYZE")
    finally:
        p.close()
    return sc


def build_scenario(stack: LocalStack, revision: str) -> Scenario:
    env = stack.new_env(revision)
    generate(env, operations=OPS, seed=21, now=NOW)
    return plant_faults(env, revision)


def use_env(env: MidazEnv, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str] | None = None) -> None:
    for key, value in {**env.airflow_conn_env(), **(settings or {})}.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module", params=["r1", "r2"])
def scenario(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[Scenario]:
    sc = build_scenario(local_stack, request.param)
    yield sc
    local_stack.drop_env(sc.env)


@pytest.fixture(scope="module", params=["r1", "r2"])
def clean(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[tuple[str, MidazEnv]]:
    env = local_stack.new_env(request.param)
    generate(env, operations=OPS, seed=22, now=NOW)
    yield request.param, env
    local_stack.drop_env(env)


@pytest.fixture(scope="module", params=["r1", "r2"])
def injected(request: pytest.FixtureRequest, local_stack: LocalStack) -> Iterator[tuple[MidazEnv, Manifest]]:
    """A generated ledger with every fault of the injector (its manifest says what must be reported)."""
    env = local_stack.new_env(request.param)
    generate(env, operations=OPS, seed=23, now=NOW)
    manifest = inject(env, faults="all", seed=9, now=NOW)
    yield env, manifest
    local_stack.drop_env(env)


def assert_manifest(result: Any, manifest: Manifest, window: tuple[datetime, datetime] | None) -> None:
    entries = manifest.expected(check=CHECK, window=window)
    expected = {e.key for e in entries}
    got = reported(result)
    assert got - expected == set(), "reported but not in the manifest"
    assert expected - got == set(), "in the manifest but not reported"
    severity = {e.key: e.severity for e in entries}
    assert all(v.severity == severity[(v.check, v.kind, v.entity)] for v in result.samples)


def assert_matches(result: Any, expected: set[tuple[str, str, str]], sc: Scenario) -> None:
    got = reported(result)
    assert got - expected == set(), "reported but not planted"
    assert expected - got == set(), "planted but not reported"
    for v in result.samples:
        assert v.severity == sc.severities[(v.check, v.kind, v.entity)], v
    assert result.violations == sum(1 for k in expected if sc.severities[k] == "error")
    assert result.warnings == sum(1 for k in expected if sc.severities[k] == "warning")


# ---------------------------------------------------------------------------------------------- store tests


def test_planted_faults_full_scope(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch, scenario.settings)
    result = check_once(CHECK, scenario.revision, NOW)
    assert_matches(result, scenario.full, scenario)
    assert result.status == "failed"
    assert result.in_flight > 0  # the generator's in-flight slice and the YOUNG plants
    assert result.metrics["judged"]["balances"] > 50


def test_planted_faults_window_scope(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch, scenario.settings)
    result = check_once(CHECK, scenario.revision, NOW, start=WIN_START, end=WIN_END)
    assert scenario.window and scenario.window < scenario.full
    assert_matches(result, scenario.window, scenario)


def test_injected_faults_match_the_manifest(injected: tuple[MidazEnv, Manifest],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    env, manifest = injected
    use_env(env, monkeypatch, manifest.settings)
    assert manifest.expected(check=CHECK), "the injector planted no referential fault"
    assert_manifest(check_once(CHECK, env.revision, NOW), manifest, None)
    windows = 0
    for days_back in (3, 2, 1, 0):  # the injector's span, day by day
        start = (NOW - timedelta(days=days_back)).replace(hour=0, minute=0)
        end = start + timedelta(days=1)
        assert_manifest(check_once(CHECK, env.revision, NOW, start=start, end=end), manifest, (start, end))
        windows += bool(manifest.expected(check=CHECK, window=(start, end)))
    assert windows >= 2  # the window comparison is not vacuous


def test_chunk_boundaries_give_the_same_findings(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny chunks: the sorted merge, the per-chunk GE validation and the keyed lookups cross boundaries."""
    use_env(scenario.env, monkeypatch, scenario.settings)
    monkeypatch.setattr(ref, "JUDGE_CHUNK", 7)
    monkeypatch.setattr(ref, "KEY_CHUNK", 5)
    monkeypatch.setattr(ref, "ID_BATCH", 3)
    monkeypatch.setattr(ref, "FETCH", 11)
    full = check_once(CHECK, scenario.revision, NOW)
    assert_matches(full, scenario.full, scenario)
    assert full.metrics["judge_chunks"] > 10  # many chunks, same findings
    window = check_once(CHECK, scenario.revision, NOW, start=WIN_START, end=WIN_END)
    assert_matches(window, scenario.window, scenario)


def test_bounded_samples_keep_exact_counts(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(scenario.env, monkeypatch, scenario.settings)
    result = check_once(CHECK, scenario.revision, NOW, max_samples=4)
    assert len(result.samples) == 4 and result.truncated
    errors = sum(1 for k in scenario.full if scenario.severities[k] == "error")
    warnings = sum(1 for k in scenario.full if scenario.severities[k] == "warning")
    assert (result.violations, result.warnings) == (errors, warnings)


def test_account_type_rule_follows_the_revision_setting(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """R1 validates the ledgers of MIDAZ_ACCOUNT_TYPE_VALIDATION (none when unset); R2 reads ledger.settings
    and ignores that variable."""
    use_env(scenario.env, monkeypatch)
    monkeypatch.delenv(config.ENV_ACCOUNT_TYPE_VALIDATION, raising=False)
    result = check_once(CHECK, scenario.revision, NOW)
    if scenario.revision == "r1":
        expected = {k for k in scenario.full if k[1] != "account_type_unknown"}
    else:
        expected = scenario.full
    assert any(k[1] == "account_type_unknown" for k in scenario.full)
    assert reported(result) == expected


def test_clean_ledger_has_no_findings(clean: tuple[str, MidazEnv], monkeypatch: pytest.MonkeyPatch) -> None:
    revision, env = clean
    use_env(env, monkeypatch)
    for kw in ({}, {"start": NOW - timedelta(days=1), "end": NOW}):
        result = check_once(CHECK, revision, NOW, **kw)
        assert (result.violations, result.warnings, result.samples) == (0, 0, [])
        assert result.status == "passed"
        assert result.in_flight > 0  # the in-flight slice's young balances, transactions and operations


# ------------------------------------------------------------------------------------------------ unit tests

def _u(n: int) -> str:
    return str(uuid.UUID(int=n))


ORG, LED = _u(10), _u(20)


def _accounts(*rows: dict[str, Any], in_scope: bool = True, scope_balance: bool = False) -> Any:
    base = dict(id=_u(1), organization_id=ORG, ledger_id=LED, alias="@a", asset_code="USD", type="deposit",
                deleted=False, young=False)
    recs = [tuple({**base, **r}[c] for c in ref.ACCOUNT_COLS) for r in rows]
    return ref.frame(recs, ref.ACCOUNT_COLS, in_scope=in_scope, scope_balance=scope_balance)


def _balances(*rows: dict[str, Any], in_scope: bool = True) -> Any:
    base = dict(account_id=_u(1), id=_u(100), organization_id=ORG, ledger_id=LED, alias="@a", asset_code="USD",
                account_type="deposit", key="default", young=False)
    recs = [tuple({**base, **r}[c] for c in ref.BALANCE_COLS) for r in rows]
    return ref.frame(recs, ref.BALANCE_COLS, in_scope=in_scope)


def _ops(*rows: dict[str, Any]) -> Any:
    base = dict(account_id=_u(1), organization_id=ORG, ledger_id=LED, alias="@a", n_settled=3, n_young=0)
    return ref.frame([tuple({**base, **r}[c] for c in ref.OP_COLS) for r in rows], ref.OP_COLS)


def _classes(acc: Any, bal: Any, ops: Any, bad_bal: set[str] = frozenset(), bad_op: set[str] = frozenset()) -> tuple:
    m, live, o = ref.classify_chunk(acc, bal, ops, set(bad_bal), set(bad_op))
    return (list(zip(m["id"], m["balance_account"], m["balance_account_live"], strict=True)),
            list(zip(live["id"], live["default_balance"], strict=True)),
            list(zip(o["alias"], o["operation_account"], strict=True)))


def test_range_chunks_align_keys_and_reject_unsorted_input() -> None:
    a = [("a", 1), ("c", 2), ("d", 3), ("e", 4)]
    b = [("a", 5), ("a", 6), ("b", 7), ("e", 8)]
    chunks = list(ref.range_chunks(a, b, [], size=2))
    assert [[[r[0] for r in part] for part in c] for c in chunks] == [
        [["a"], ["a", "a"], []], [["c", "d"], ["b"], []], [["e"], ["e"], []]]
    assert [r for c in chunks for r in c[1]] == b  # nothing lost, nothing repeated
    # a run of equal keys longer than the buffer is never split across chunks
    many = [("k", n) for n in range(5)] + [("m", 9)]
    chunks = list(ref.range_chunks([("k", 0), ("m", 1)], many, size=2))
    assert [[[r[0] for r in part] for part in c] for c in chunks] == [[["k"], ["k"] * 5], [["m"], ["m"]]]
    with pytest.raises(RuntimeError, match="not ordered"):
        list(ref.range_chunks([("b", 1), ("a", 2)], size=5))


def test_classify_rule_1_balance_against_account() -> None:
    acc = _accounts({}, {"id": _u(2), "deleted": True}, {"id": _u(3), "young": True})
    bal = _balances(
        {},  # consistent
        {"id": _u(101), "account_id": _u(9)},  # no account
        {"id": _u(102), "account_id": _u(2)},  # account soft-deleted
        {"id": _u(103), "account_id": _u(2), "ledger_id": _u(21)},  # deleted and disagreeing: both findings
        {"id": _u(104), "alias": "@b", "key": "x"},  # disagreeing alias
        {"id": _u(105), "young": True, "account_id": _u(9)},  # the balance is in flight
        {"id": _u(106), "account_id": _u(3)},  # its account is in flight
        {"id": _u(107), "account_id": _u(9), "organization_id": _u(11)},  # an unknown-ledger row: rule 3's
    )
    rule1, _, _ = _classes(acc, bal, _ops(), bad_bal={f"{_u(11)}/{LED}"})
    assert rule1 == [
        (_u(100), "ok", "ok"),
        (_u(101), "balance_account_missing", None),
        (_u(102), "ok", "balance_account_deleted"),
        (_u(103), "balance_account_mismatch", "balance_account_deleted"),
        (_u(104), "balance_account_mismatch", "ok"),
        (_u(105), "in_flight", None),
        (_u(106), "in_flight", None),
        (_u(107), "skipped", None),
    ]


def test_classify_rule_1_window_scope_judges_only_rows_in_scope() -> None:
    acc = _accounts({}, in_scope=False)
    bal = ref.frame([], ref.BALANCE_COLS, in_scope=True)
    assert _classes(acc, bal, _ops())[0] == []
    bal = _balances({}, {"id": _u(101), "alias": "@x"}, in_scope=False)
    assert _classes(acc, bal, _ops())[0] == []  # neither the balances nor their account were written in it
    rows = _classes(_accounts({}, in_scope=True), bal, _ops())[0]
    assert [r[1] for r in rows] == ["ok", "balance_account_mismatch"]  # the account was


def test_classify_rule_2_default_balance() -> None:
    acc = _accounts({}, {"id": _u(2)}, {"id": _u(3)}, {"id": _u(4)}, {"id": _u(5), "young": True},
                    {"id": _u(6), "deleted": True}, {"id": _u(7)})
    bal = _balances(
        {},  # account 1: one default
        {"id": _u(101), "account_id": _u(2), "key": "savings"},  # account 2: no default
        {"id": _u(102), "account_id": _u(3)}, {"id": _u(103), "account_id": _u(3)},  # account 3: two
        {"id": _u(104), "account_id": _u(4)}, {"id": _u(105), "account_id": _u(4), "young": True},  # 4: in flight
        {"id": _u(106), "account_id": _u(7), "key": "Default"},  # account 7: keys are lower-case in Midaz
    )
    _, rule2, _ = _classes(acc, bal, _ops())
    assert rule2 == [(_u(1), "ok"), (_u(2), "account_default_balance_missing"),
                     (_u(3), "account_default_balance_duplicate"), (_u(4), "in_flight"), (_u(5), "in_flight"),
                     (_u(7), "account_default_balance_missing")]  # the deleted account 6 is not judged
    # window scope: an account is judged when it, or one of its balances, was written in the window
    assert _classes(_accounts({}, in_scope=False), _balances({}), _ops())[1] == []
    assert _classes(_accounts({}, in_scope=False, scope_balance=True), _balances(), _ops())[1] == [
        (_u(1), "account_default_balance_missing")]


def test_classify_rule_5_operation_account() -> None:
    ops = _ops({}, {"alias": "@old"}, {"alias": "@none", "account_id": _u(9)}, {"alias": "@org", "organization_id": _u(11)},
               {"alias": "@young", "n_settled": 0, "n_young": 2}, {"alias": "@bad", "ledger_id": _u(21)})
    _, _, rule5 = _classes(_accounts({}), _balances({}), ops, bad_op={f"{ORG}/{_u(21)}"})
    assert rule5 == [("@a", "ok"), ("@old", "operation_account_mismatch"), ("@none", "operation_account_mismatch"),
                     ("@org", "operation_account_mismatch"), ("@young", "in_flight"), ("@bad", "skipped")]


def test_uuid_text_order_matches_postgres(scenario: Scenario) -> None:
    """The merge compares ids as lower-case text: that order must be PostgreSQL's uuid order."""
    ids = [uuid.UUID(int=(1 << 127) + 5), uuid.UUID(int=7), uuid.UUID("ffffffff-0000-7000-8000-000000000000"),
           uuid.UUID("0000000f-0000-7000-8000-000000000000"), uuid.UUID("80000000-0000-4000-8000-0000000000a0"),
           uuid.UUID("80000000-0000-4000-8000-00000000009f")]
    with ref.text_uuids(psycopg.connect(scenario.env.transaction_conninfo)) as conn:
        got = [r[0] for r in conn.execute("SELECT unnest(%s::uuid[]) AS u ORDER BY u", ([str(i) for i in ids],))]
    assert got == sorted(str(i) for i in ids)
    assert all(isinstance(g, str) and g == g.lower() for g in got)


def test_sql_params_carry_lookback_and_validation_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.checks.conftest import make_context

    org, led = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    monkeypatch.setenv(config.ENV_ACCOUNT_TYPE_VALIDATION, f" {org.upper()}:{led} , a:l2,garbage")
    ctx = make_context("r1", NOW, start=WIN_START, end=WIN_END)
    p = ref.sql_params(ctx)
    assert (p["atv_orgs"], p["atv_ledgers"]) == ([org], [led])  # malformed pairs are ignored
    lookback = uuid.UUID(p["id_lookback"]).int >> 80
    assert lookback == int((WIN_START - ctx.window.hard_grace).timestamp() * 1000)
    assert ref.sql_params(make_context("r1", NOW))["id_lookback"] == str(uuid.UUID(int=0))
