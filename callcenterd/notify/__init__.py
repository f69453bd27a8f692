"""What leaves the daemon besides the API and the WebSocket: SMS, email and webhooks.

Every message goes through one durable outbox (`store/outbox.py`; its vocabulary is
`domain/messages.py`): it is written in the same transaction as the fact that caused it
and sent later by the outbox worker, so sending never delays routing and a kill loses
nothing. This package holds the transports and the message sources.
"""
