-- Batches ("processing records"). Status moves only from 'processing' to one
-- of the final states; the partial unique index below is the global task lock.
CREATE TABLE ai_batches (
    batch_id          TEXT PRIMARY KEY
                      CHECK (batch_id ~ '^batch_[0-9]{13}_[a-z0-9]{6}$'),
    status            TEXT NOT NULL DEFAULT 'processing'
                      CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
    filter            JSONB NOT NULL DEFAULT '{}',
    settings          JSONB NOT NULL DEFAULT '{}',
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('optimized', 'traditional')),
    batch_size        INTEGER NOT NULL CHECK (batch_size BETWEEN 1 AND 100),
    concurrency       INTEGER NOT NULL CHECK (concurrency BETWEEN 1 AND 32),
    max_item_id       BIGINT NOT NULL DEFAULT 0,
    claim_cursor      BIGINT NOT NULL DEFAULT 0,
    total             BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0),
    processed         BIGINT NOT NULL DEFAULT 0,
    succeeded         BIGINT NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
    failed            BIGINT NOT NULL DEFAULT 0 CHECK (failed >= 0),
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    owner_instance_id TEXT,
    heartbeat_at      TIMESTAMPTZ,
    error             TEXT,
    cancel_reason     TEXT,
    previous_batch_id TEXT REFERENCES ai_batches (batch_id),
    CONSTRAINT counters_add_up CHECK (processed = succeeded + failed AND processed <= total),
    CONSTRAINT finished_iff_final CHECK ((status = 'processing') = (finished_at IS NULL))
);

CREATE UNIQUE INDEX ai_batches_one_processing ON ai_batches ((true)) WHERE status = 'processing';
CREATE INDEX ai_batches_started ON ai_batches (started_at DESC, batch_id DESC);

CREATE TABLE items (
    id             BIGSERIAL PRIMARY KEY,
    external_id    TEXT NOT NULL UNIQUE CHECK (length(external_id) BETWEEN 1 AND 256),
    content        TEXT NOT NULL,
    username       TEXT,
    list_id        TEXT,
    published_at   TIMESTAMPTZ,
    analysis_state TEXT NOT NULL DEFAULT 'pending'
                   CHECK (analysis_state IN ('pending', 'processing', 'analyzed', 'failed')),
    analysis       JSONB,
    analysed_at    TIMESTAMPTZ,
    provider       TEXT,
    model          TEXT,
    -- The batch of the last finished attempt.
    batch_id       TEXT REFERENCES ai_batches (batch_id),
    -- The processing batch that holds the item; set exactly while 'processing'.
    claim_batch_id TEXT REFERENCES ai_batches (batch_id),
    last_error     TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT claimed_iff_processing
        CHECK ((analysis_state = 'processing') = (claim_batch_id IS NOT NULL)),
    CONSTRAINT analyzed_has_analysis
        CHECK (analysis_state <> 'analyzed' OR analysis IS NOT NULL)
);

-- Releasing a batch's in-flight items touches only the claimed rows.
CREATE INDEX items_claimed ON items (claim_batch_id) WHERE claim_batch_id IS NOT NULL;
CREATE INDEX items_batch ON items (batch_id, id) WHERE batch_id IS NOT NULL;
CREATE INDEX items_state ON items (analysis_state, id);
CREATE INDEX items_list ON items (list_id, id);
CREATE INDEX items_username ON items (username, id);

-- An item may be 'processing' only while the batch that claims it is
-- 'processing'. Both sides are checked at commit, so a transaction may
-- cancel a batch and release its items in either order.
CREATE FUNCTION items_claim_batch_is_processing() RETURNS trigger AS $$
BEGIN
    IF NEW.claim_batch_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ai_batches
        WHERE batch_id = NEW.claim_batch_id AND status = 'processing'
    ) THEN
        RAISE EXCEPTION 'item % is claimed by batch %, which is not processing',
            NEW.id, NEW.claim_batch_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER items_claim_batch_is_processing
    AFTER INSERT OR UPDATE OF claim_batch_id ON items
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.claim_batch_id IS NOT NULL)
    EXECUTE FUNCTION items_claim_batch_is_processing();

CREATE FUNCTION ai_batches_final_holds_no_items() RETURNS trigger AS $$
BEGIN
    IF NEW.status <> 'processing' AND EXISTS (
        SELECT 1 FROM items WHERE claim_batch_id = NEW.batch_id
    ) THEN
        RAISE EXCEPTION 'batch % is %, but items are still claimed by it',
            NEW.batch_id, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ai_batches_final_holds_no_items
    AFTER UPDATE OF status ON ai_batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status <> 'processing')
    EXECUTE FUNCTION ai_batches_final_holds_no_items();

-- A final status is final.
CREATE FUNCTION ai_batches_status_is_final() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> 'processing' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'batch % is % and cannot become %',
            OLD.batch_id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ai_batches_status_is_final
    BEFORE UPDATE OF status ON ai_batches
    FOR EACH ROW EXECUTE FUNCTION ai_batches_status_is_final();

-- Audit log of clears, resets and cancels.
CREATE TABLE control_events (
    id              BIGSERIAL PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    action          TEXT NOT NULL CHECK (action IN ('clear', 'reset_force', 'reset_gentle', 'cancel')),
    -- First 16 hex digits of the SHA-256 of the API key, never the key.
    key_fingerprint TEXT NOT NULL,
    client_addr     TEXT,
    instance_id     TEXT NOT NULL,
    before_snapshot JSONB NOT NULL,
    after_snapshot  JSONB,
    counts          JSONB NOT NULL DEFAULT '{}',
    batch_ids       TEXT[] NOT NULL DEFAULT '{}'
);
CREATE INDEX control_events_at ON control_events (at DESC);
