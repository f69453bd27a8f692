"""The REST API: one module per area; handlers parse input, call a service, return a model."""
