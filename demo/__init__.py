"""`make demo` (`python -m demo`): a live call center to look at.

The sandbox Asterisk of the e2e tests (tests/sandbox), the real daemon as a process, its call
center created through the REST API, simulated operators (sipp phones with human ring and talk
times, pauses, one logging off) and simulated callers (Poisson arrivals, some abandoning, some
pressing 1 for a callback). Without root or the package registries: the daemon alone.
"""
