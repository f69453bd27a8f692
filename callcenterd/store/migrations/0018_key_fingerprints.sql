-- Which keys this database was written with: an HMAC of a fixed text under each key (never
-- the key, nor a plain hash of it). A daemon started with other keys refuses to start: its
-- tokens would not verify and the stored secrets (ARI, SMTP passwords, webhook secrets)
-- would not decrypt.
CREATE TABLE key_fingerprints (
    name        TEXT PRIMARY KEY,   -- jwt_signing, secret_encryption
    fingerprint TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
