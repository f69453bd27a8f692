"""Plain data of the contact center: no I/O, no asyncio, no clock reads."""
