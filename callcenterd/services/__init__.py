"""Use cases: what the API and the telephony adapters ask the daemon to do."""
