DROP TABLE control_events;
DROP TABLE items;
DROP TABLE ai_batches;
DROP FUNCTION ai_batches_status_is_final();
DROP FUNCTION ai_batches_final_holds_no_items();
DROP FUNCTION items_claim_batch_is_processing();
