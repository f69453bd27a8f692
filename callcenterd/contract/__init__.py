"""The API's contract: request and response models and the 422 validation errors.

Below the services, so use cases take and return these models without importing the HTTP
layer; above the pure core (domain, routing, analytics), whose types they are built from.
"""
