"""The wallboard and admin pages: `/` and its static files (plain ES modules and CSS).

The pages hold no data: they log in through the REST API and follow the live events over the
WebSocket like any other client, so everything they show is what the user's role may see.
"""
