-- Midaz onboarding database, public schema after migrations 000000-000007 (R1, Midaz v3 Dec 2025).
-- Written from reference/midaz-data-model.md §2.1 and §2.3; column order is the physical order.
-- golang-migrate leaves schema_migrations at (7, false).

CREATE TABLE organization (
    id                      UUID PRIMARY KEY NOT NULL,
    parent_organization_id  UUID,
    legal_name              TEXT NOT NULL,
    doing_business_as       TEXT,
    legal_document          TEXT NOT NULL,
    address                 JSONB NOT NULL,
    status                  TEXT NOT NULL,
    status_description      TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at              TIMESTAMPTZ,
    FOREIGN KEY (parent_organization_id) REFERENCES organization (id)
);
CREATE INDEX idx_organization_created_at ON organization (created_at);

CREATE TABLE ledger (
    id                  UUID PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL,
    organization_id     UUID NOT NULL,
    status              TEXT NOT NULL,
    status_description  TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    FOREIGN KEY (organization_id) REFERENCES organization (id)
);
CREATE INDEX idx_ledger_created_at ON ledger (created_at);

CREATE TABLE asset (
    id                  UUID PRIMARY KEY NOT NULL,
    name                TEXT,
    type                TEXT NOT NULL,
    code                TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_description  TEXT,
    ledger_id           UUID NOT NULL,
    organization_id     UUID NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    FOREIGN KEY (ledger_id) REFERENCES ledger (id),
    FOREIGN KEY (organization_id) REFERENCES organization (id)
);
CREATE INDEX idx_asset_search ON asset (organization_id, ledger_id, deleted_at, created_at DESC) INCLUDE (name, code);

CREATE TABLE segment (
    id                  UUID PRIMARY KEY NOT NULL,
    name                TEXT,
    ledger_id           UUID NOT NULL,
    organization_id     UUID NOT NULL,
    status              TEXT NOT NULL,
    status_description  TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    FOREIGN KEY (ledger_id) REFERENCES ledger (id),
    FOREIGN KEY (organization_id) REFERENCES organization (id)
);
CREATE INDEX idx_segment_created_at ON segment (created_at);

CREATE TABLE portfolio (
    id                  UUID PRIMARY KEY NOT NULL,
    name                TEXT,
    entity_id           TEXT NOT NULL,
    ledger_id           UUID NOT NULL,
    organization_id     UUID NOT NULL,
    status              TEXT NOT NULL,
    status_description  TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    FOREIGN KEY (ledger_id) REFERENCES ledger (id),
    FOREIGN KEY (organization_id) REFERENCES organization (id)
);
CREATE INDEX idx_portfolio_id ON portfolio (organization_id, ledger_id, id, deleted_at, created_at);

CREATE TABLE account (
    id                  UUID PRIMARY KEY NOT NULL,
    name                TEXT,
    parent_account_id   UUID,
    entity_id           TEXT,
    asset_code          TEXT NOT NULL,
    organization_id     UUID NOT NULL,
    ledger_id           UUID NOT NULL,
    portfolio_id        UUID,
    segment_id          UUID,
    status              TEXT NOT NULL,
    status_description  TEXT,
    alias               TEXT NOT NULL,
    type                TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    FOREIGN KEY (parent_account_id) REFERENCES account (id),
    FOREIGN KEY (organization_id) REFERENCES organization (id),
    FOREIGN KEY (ledger_id) REFERENCES ledger (id),
    FOREIGN KEY (portfolio_id) REFERENCES portfolio (id),
    FOREIGN KEY (segment_id) REFERENCES segment (id)
);
-- Not unique: alias uniqueness is enforced only by the application (FindByAlias).
CREATE INDEX idx_account_alias ON account (organization_id, ledger_id, alias, deleted_at, created_at);

CREATE TABLE account_type (
    id               UUID PRIMARY KEY NOT NULL,
    organization_id  UUID NOT NULL,
    ledger_id        UUID NOT NULL,
    name             VARCHAR(100) NOT NULL,
    description      TEXT,
    key_value        VARCHAR(50) NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at       TIMESTAMPTZ,
    FOREIGN KEY (organization_id) REFERENCES organization (id),
    FOREIGN KEY (ledger_id) REFERENCES ledger (id)
);
CREATE INDEX idx_account_type_organization_id_ledger_id ON account_type (organization_id, ledger_id);
CREATE INDEX idx_account_type_key_value ON account_type (organization_id, ledger_id, key_value) WHERE deleted_at IS NULL;
CREATE INDEX idx_account_type_deleted_at ON account_type (organization_id, ledger_id, deleted_at);
CREATE UNIQUE INDEX idx_account_type_unique_key_value ON account_type (organization_id, ledger_id, key_value)
    WHERE deleted_at IS NULL;

-- 000007: blocked goes last (physical order matters for positional reads).
ALTER TABLE account ADD COLUMN blocked BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE schema_migrations (
    version  BIGINT NOT NULL PRIMARY KEY,
    dirty    BOOLEAN NOT NULL
);
INSERT INTO schema_migrations (version, dirty) VALUES (7, false);
