"""/api/admin/settings/email: the SMTP connection test (the settings themselves are part of
/api/admin/settings, as `email_config`)."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.schemas import EmailTestRequest, EmailTestResult
from callcenterd.domain.users import Role

routes = ApiRoutes("admin")


@routes.route(
    "POST",
    "/admin/settings/email/test",
    summary="Send a test email now with the stored SMTP settings",
    roles=[Role.ADMIN],
    body=EmailTestRequest,
    response=EmailTestResult,
    notes=(
        "Always 200: `success` says whether the server took the message. On failure `data.code`"
        " says why: not_configured, connection_refused, timeout, tls_failed, auth_failed,"
        " recipient_refused, sender_refused, not_supported, rejected, disconnected. Sent at"
        " once, not through the outbox; the password is never shown."
    ),
)
async def test_email(request: web.Request, body: EmailTestRequest) -> EmailTestResult:
    return await request.app[keys.SERVICES].email.send_test(body)
