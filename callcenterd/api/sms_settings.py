"""/api/admin/settings/sms: the SMS gateway test."""

from __future__ import annotations

from aiohttp import web

from callcenterd import keys
from callcenterd.api.endpoints import ApiRoutes
from callcenterd.contract.sms import SmsTestRequest, SmsTestResult
from callcenterd.domain.users import Role

routes = ApiRoutes("admin")
ADMIN = [Role.ADMIN]


@routes.route(
    "POST",
    "/admin/settings/sms/test",
    summary="Send one SMS through the gateway now",
    roles=ADMIN,
    body=SmsTestRequest,
    response=SmsTestResult,
    notes="Not through the outbox. Always 200 once the body is valid: `success` says whether"
    " the gateway accepted it; failures carry SMS_001..006 in data.code. 422: `to` is not a"
    " number an SMS can go to.",
)
async def test_sms(request: web.Request, body: SmsTestRequest) -> SmsTestResult:
    return await request.app[keys.SERVICES].sms.test(body)
