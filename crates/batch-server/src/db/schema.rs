//! Diesel table definitions, matching the migrations.

diesel::table! {
    /// Batches, also called processing records.
    ai_batches (batch_id) {
        batch_id -> Text,
        status -> Text,
        filter -> Jsonb,
        settings -> Jsonb,
        provider -> Text,
        model -> Text,
        mode -> Text,
        batch_size -> Int4,
        concurrency -> Int4,
        max_item_id -> Int8,
        claim_cursor -> Int8,
        total -> Int8,
        processed -> Int8,
        succeeded -> Int8,
        failed -> Int8,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        owner_instance_id -> Nullable<Text>,
        heartbeat_at -> Nullable<Timestamptz>,
        error -> Nullable<Text>,
        cancel_reason -> Nullable<Text>,
        previous_batch_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// Stored short texts and their analyses.
    items (id) {
        id -> Int8,
        external_id -> Text,
        content -> Text,
        username -> Nullable<Text>,
        list_id -> Nullable<Text>,
        published_at -> Nullable<Timestamptz>,
        analysis_state -> Text,
        analysis -> Nullable<Jsonb>,
        analysed_at -> Nullable<Timestamptz>,
        provider -> Nullable<Text>,
        model -> Nullable<Text>,
        batch_id -> Nullable<Text>,
        claim_batch_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        attempts -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    /// Audit log of clears, resets and cancels.
    control_events (id) {
        id -> Int8,
        at -> Timestamptz,
        action -> Text,
        key_fingerprint -> Text,
        client_addr -> Nullable<Text>,
        instance_id -> Text,
        before_snapshot -> Jsonb,
        after_snapshot -> Nullable<Jsonb>,
        counts -> Jsonb,
        batch_ids -> Array<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(ai_batches, items, control_events);
