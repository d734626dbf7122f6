# Recipes for working on batch; `just --list` shows them.

# Run the server on the embedded PostgreSQL default (or DATABASE_URL).
dev:
    cargo run -p batch-server

# Run every test against a real PostgreSQL.
test:
    cargo test --workspace --all-features

# Check formatting, clippy and docs, as CI does.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --all-features -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

# Regenerate the committed OpenAPI document.
openapi:
    cargo run -q -p batch-server -- openapi > openapi/openapi.json

# Load a JSONL file of items into the database.
import FILE:
    cargo run -p batch-server --release -- import {{FILE}}

# Run the benchmark programs; each prints ratios against a baseline.
bench:
    cargo bench -p batch-server

# Run the whole CI script locally.
ci:
    bash .ci/run
