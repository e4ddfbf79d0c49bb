-- Midaz transaction database, public schema after migrations 000000-000035 (R2, Midaz v4 2026).
-- Written from reference/midaz-data-model.md §2.2 and §2.3. Columns that migrations dropped are created
-- and dropped again so that ordinal positions keep the same gaps as a migrated database.
-- Only the listed FKs exist: operation.balance_id, balance.* and asset_rate.* carry none.
-- golang-migrate leaves schema_migrations at (35, false).

CREATE TABLE "transaction" (
    id                            UUID PRIMARY KEY NOT NULL,
    parent_transaction_id         UUID,
    description                   TEXT NOT NULL,
    template                      TEXT,    -- dropped by 000004
    status                        TEXT NOT NULL,
    status_description            TEXT,
    amount                        DECIMAL NOT NULL,
    amount_scale                  BIGINT,  -- dropped by 000004
    asset_code                    TEXT NOT NULL,
    chart_of_accounts_group_name  TEXT NOT NULL,
    ledger_id                     UUID NOT NULL,
    organization_id               UUID NOT NULL,
    body                          JSONB,
    created_at                    TIMESTAMPTZ NOT NULL,
    updated_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at                    TIMESTAMPTZ,
    FOREIGN KEY (parent_transaction_id) REFERENCES "transaction" (id)
);
CREATE INDEX idx_transaction_parent_transaction_id ON "transaction" (parent_transaction_id);
CREATE INDEX idx_transaction_organization_ledger_id ON "transaction" (organization_id, ledger_id);
CREATE INDEX idx_transaction_created_at ON "transaction" (created_at);

CREATE TABLE operation (
    id                       UUID PRIMARY KEY NOT NULL,
    transaction_id           UUID NOT NULL,
    description              TEXT NOT NULL,
    type                     TEXT NOT NULL,
    asset_code               TEXT NOT NULL,
    amount                   DECIMAL NOT NULL DEFAULT 0,
    amount_scale             BIGINT,  -- dropped by 000006
    available_balance        DECIMAL NOT NULL DEFAULT 0,
    on_hold_balance          DECIMAL NOT NULL DEFAULT 0,
    balance_scale            BIGINT,  -- dropped by 000006
    available_balance_after  DECIMAL NOT NULL DEFAULT 0,
    on_hold_balance_after    DECIMAL NOT NULL DEFAULT 0,
    balance_scale_after      BIGINT,  -- dropped by 000006
    status                   TEXT NOT NULL,
    status_description       TEXT,
    account_id               UUID NOT NULL,
    account_alias            TEXT NOT NULL,
    balance_id               UUID NOT NULL,
    chart_of_accounts        TEXT NOT NULL,
    organization_id          UUID NOT NULL,
    ledger_id                UUID NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at               TIMESTAMPTZ,
    FOREIGN KEY (transaction_id) REFERENCES "transaction" (id)
);
CREATE INDEX idx_operation_organization_transaction_id ON operation (transaction_id);
CREATE INDEX idx_operation_organization_ledger_id ON operation (organization_id, ledger_id);
CREATE INDEX idx_operation_created_at ON operation (created_at);

CREATE TABLE asset_rate (
    id               UUID PRIMARY KEY NOT NULL,
    organization_id  UUID NOT NULL,
    ledger_id        UUID NOT NULL,
    external_id      UUID NOT NULL,
    "from"           TEXT NOT NULL,
    "to"             TEXT NOT NULL,
    rate             BIGINT NOT NULL,
    rate_scale       NUMERIC NOT NULL,
    source           TEXT,
    ttl              BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_asset_rate_organization_ledger_id ON asset_rate (organization_id, ledger_id);
CREATE INDEX idx_asset_rate_created_at ON asset_rate (created_at);

CREATE TABLE balance (
    id               UUID PRIMARY KEY NOT NULL,
    organization_id  UUID NOT NULL,
    ledger_id        UUID NOT NULL,
    account_id       UUID NOT NULL,
    alias            TEXT NOT NULL,
    asset_code       TEXT NOT NULL,
    available        DECIMAL NOT NULL DEFAULT 0,
    on_hold          DECIMAL NOT NULL DEFAULT 0,
    scale            BIGINT,  -- dropped by 000005
    version          BIGINT DEFAULT 0,  -- nullable: read it as COALESCE(version, 0)
    account_type     TEXT NOT NULL,
    allow_sending    BOOLEAN NOT NULL,
    allow_receiving  BOOLEAN NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX idx_balance_account_id ON balance (organization_id, ledger_id, account_id, deleted_at, created_at);

-- 000004-000006: amounts become exact decimals, the scale columns go.
ALTER TABLE "transaction" DROP COLUMN template, DROP COLUMN amount_scale, ADD COLUMN route TEXT;
ALTER TABLE balance DROP COLUMN scale;
ALTER TABLE operation DROP COLUMN amount_scale, DROP COLUMN balance_scale, DROP COLUMN balance_scale_after;
ALTER TABLE operation ADD COLUMN route TEXT;

-- 000007
CREATE TABLE operation_route (
    id                     UUID PRIMARY KEY NOT NULL,
    organization_id        UUID NOT NULL,
    ledger_id              UUID NOT NULL,
    title                  VARCHAR(255) NOT NULL,
    description            VARCHAR(250),
    operation_type         VARCHAR(20) NOT NULL CHECK (LOWER(operation_type) IN ('source', 'destination')),
    account_rule_type      VARCHAR(20),
    account_rule_valid_if  TEXT,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at             TIMESTAMPTZ
);
CREATE INDEX idx_operation_route_organization_id_ledger_id ON operation_route (organization_id, ledger_id);
CREATE INDEX idx_operation_route_type ON operation_route (organization_id, ledger_id, operation_type)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_operation_route_deleted_at ON operation_route (organization_id, ledger_id, deleted_at);

-- 000008
CREATE TABLE transaction_route (
    id               UUID PRIMARY KEY NOT NULL,
    organization_id  UUID NOT NULL,
    ledger_id        UUID NOT NULL,
    title            VARCHAR(255) NOT NULL,
    description      VARCHAR(250),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX idx_transaction_route_organization_id_ledger_id ON transaction_route (organization_id, ledger_id);

CREATE TABLE operation_transaction_route (
    id                    UUID PRIMARY KEY NOT NULL,
    operation_route_id    UUID NOT NULL,
    transaction_route_id  UUID NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    deleted_at            TIMESTAMPTZ,
    FOREIGN KEY (operation_route_id) REFERENCES operation_route (id),
    FOREIGN KEY (transaction_route_id) REFERENCES transaction_route (id)
);
CREATE UNIQUE INDEX idx_operation_transaction_route_unique
    ON operation_transaction_route (operation_route_id, transaction_route_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_operation_transaction_route_operation_route_id
    ON operation_transaction_route (operation_route_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_operation_transaction_route_transaction_route_id
    ON operation_transaction_route (transaction_route_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_operation_transaction_route_deleted_at ON operation_transaction_route (deleted_at);

-- 000009
ALTER TABLE operation ADD COLUMN balance_affected BOOLEAN NOT NULL DEFAULT true;

-- 000010: balance keys. Despite its name idx_unique_balance_alias_key is NOT unique.
ALTER TABLE balance ADD COLUMN key TEXT NOT NULL DEFAULT 'default';
CREATE INDEX idx_unique_balance_alias_key ON balance (organization_id, ledger_id, alias, key) WHERE deleted_at IS NULL;

-- 000011
ALTER TABLE operation ADD COLUMN balance_key TEXT NOT NULL DEFAULT 'default';

-- 000012
ALTER TABLE operation_route ADD COLUMN code TEXT;

-- 000013 (CONCURRENTLY in Midaz)
CREATE INDEX idx_operation_account ON operation (organization_id, ledger_id, account_id, deleted_at, created_at);

-- 000014
ALTER TABLE operation ADD COLUMN balance_version_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE operation ADD COLUMN balance_version_after BIGINT NOT NULL DEFAULT 0;

-- 000015
CREATE INDEX idx_operation_account_id ON operation (organization_id, ledger_id, account_id, id) WHERE deleted_at IS NULL;

-- 000016-000017
DROP INDEX idx_operation_account;
CREATE INDEX idx_operation_account_balance_pit
    ON operation (organization_id, ledger_id, account_id, balance_id, created_at DESC, balance_version_after DESC)
    WHERE deleted_at IS NULL;

-- 000018-000019 (direction is NULL on legacy rows; route_id has no FK)
ALTER TABLE operation ADD COLUMN direction VARCHAR(10);
ALTER TABLE operation ADD COLUMN route_id UUID;

-- 000020: the operation type check gains 'bidirectional' (same name).
ALTER TABLE operation_route DROP CONSTRAINT operation_route_operation_type_check;
ALTER TABLE operation_route ADD CONSTRAINT operation_route_operation_type_check
    CHECK (LOWER(operation_type) IN ('source', 'destination', 'bidirectional'));

-- 000022-000024
ALTER TABLE operation_route ADD COLUMN accounting_entries JSONB;
ALTER TABLE operation ADD COLUMN route_code TEXT;
ALTER TABLE operation ADD COLUMN route_description TEXT;

-- 000025-000029
ALTER TABLE "transaction" ADD COLUMN route_id UUID;
CREATE INDEX idx_transaction_route_id ON "transaction" (route_id) WHERE route_id IS NOT NULL;
CREATE INDEX idx_transaction_route_status ON "transaction" (organization_id, ledger_id, route, status, created_at)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_transaction_date_range ON "transaction" (organization_id, ledger_id, created_at)
    WHERE deleted_at IS NULL;

-- 000030
CREATE INDEX idx_operation_org_ledger_route_code ON operation (organization_id, ledger_id, route_code)
    WHERE deleted_at IS NULL AND route_code IS NOT NULL;

-- 000031: balance direction and overdraft.
ALTER TABLE balance ADD COLUMN direction VARCHAR(16) NOT NULL DEFAULT 'credit'
    CHECK (direction IN ('credit', 'debit'));
ALTER TABLE balance ADD COLUMN overdraft_used DECIMAL NOT NULL DEFAULT 0 CHECK (overdraft_used >= 0);
ALTER TABLE balance ADD COLUMN settings JSONB;

-- 000032: the first real uniqueness guard on balances.
CREATE UNIQUE INDEX idx_unique_balance_account_key ON balance (organization_id, ledger_id, account_id, asset_code, key)
    WHERE deleted_at IS NULL;

-- 000033
ALTER TABLE operation ADD COLUMN snapshot JSONB NOT NULL DEFAULT '{}';

-- 000034: durable landing zone for poison records of the Redis backup queue.
CREATE TABLE transaction_backup_quarantine (
    id               UUID PRIMARY KEY NOT NULL,
    organization_id  UUID NOT NULL,
    ledger_id        UUID NOT NULL,
    transaction_id   UUID NOT NULL,
    redis_key        TEXT NOT NULL UNIQUE,
    payload          BYTEA NOT NULL,
    failure_reason   TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_failed_at  TIMESTAMPTZ,
    quarantined_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_transaction_backup_quarantine_org_ledger
    ON transaction_backup_quarantine (organization_id, ledger_id, quarantined_at);

-- 000035
ALTER TABLE "transaction" ADD COLUMN fees_skipped BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE "transaction" ADD COLUMN tracer_skipped BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE schema_migrations (
    version  BIGINT NOT NULL PRIMARY KEY,
    dirty    BOOLEAN NOT NULL
);
INSERT INTO schema_migrations (version, dirty) VALUES (35, false);
