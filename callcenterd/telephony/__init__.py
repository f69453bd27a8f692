"""Asterisk adapters: ARI (primary) and AMI (fallback). Thin: translate, never decide."""
