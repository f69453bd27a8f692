"""Live events: the bus that carries them to WebSocket clients and metrics."""
