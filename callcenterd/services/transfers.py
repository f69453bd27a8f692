"""Hold and transfers asked through the API (issue 11, parts 1-2).

Who may act on a call: admins and managers on any call; a supervisor on the calls of their
group (the call scope of services/calls.py); an operator only on the call they are talking
on now. The routing engine decides whether the call's state allows the request (talking,
held, a transfer under way, the target free): its refusals become the errors below. What it
decides is carried out by the dispatcher (services/call_actions.py) and recorded by the call
recorder, which publishes the events (`call_held`, `call_transferred`...).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from callcenterd.contract.transfers import ExternalTarget, OperatorTarget, TransferRequest
from callcenterd.domain import commands as cmd
from callcenterd.domain import events as ev
from callcenterd.domain.users import Role
from callcenterd.errors import (
    CallAlreadyHeld,
    CallcenterError,
    CallNotAnswered,
    CallNotHeld,
    NoTransferInProgress,
    PermissionDenied,
    TransferInProgress,
    TransferNotSupported,
    TransferTargetBusy,
    TransferTargetNotAnswered,
    TransferTargetOffline,
    TransferTargetUnknown,
    TransferToSelf,
)
from callcenterd.security import Principal
from callcenterd.services.calls import CallService, CallWithTimeline
from callcenterd.services.dispatcher import Dispatcher
from callcenterd.settings import TransferSettings
from callcenterd.store.operators import OperatorDirectory

log = structlog.get_logger(__name__)

# The engine's refusals as the API's errors; those about the target name the field.
_ERRORS: dict[cmd.Refusal, type[CallcenterError]] = {
    cmd.Refusal.NOT_ANSWERED: CallNotAnswered,
    cmd.Refusal.ALREADY_HELD: CallAlreadyHeld,
    cmd.Refusal.NOT_HELD: CallNotHeld,
    cmd.Refusal.TRANSFER_IN_PROGRESS: TransferInProgress,
    cmd.Refusal.NO_TRANSFER: NoTransferInProgress,
    cmd.Refusal.CONSULT_NOT_ANSWERED: TransferTargetNotAnswered,
    cmd.Refusal.TARGET_UNKNOWN: TransferTargetUnknown,
    cmd.Refusal.TARGET_SELF: TransferToSelf,
    cmd.Refusal.TARGET_OFFLINE: TransferTargetOffline,
    cmd.Refusal.TARGET_BUSY: TransferTargetBusy,
    cmd.Refusal.UNSUPPORTED: TransferNotSupported,
}
_TARGET_REFUSALS = frozenset(
    {
        cmd.Refusal.TARGET_UNKNOWN,
        cmd.Refusal.TARGET_SELF,
        cmd.Refusal.TARGET_OFFLINE,
        cmd.Refusal.TARGET_BUSY,
        cmd.Refusal.UNSUPPORTED,
    }
)


class CallTransfers:
    def __init__(
        self,
        calls: CallService,
        dispatcher: Dispatcher,
        directory: OperatorDirectory,
        settings: TransferSettings,
    ) -> None:
        self._calls = calls
        self._dispatcher = dispatcher
        self._directory = directory
        self._settings = settings

    async def hold(self, call_id: str, actor: Principal) -> CallWithTimeline:
        return await self._ask(call_id, actor, lambda: ev.HoldRequested(call_id), "hold")

    async def unhold(self, call_id: str, actor: Principal) -> CallWithTimeline:
        return await self._ask(call_id, actor, lambda: ev.UnholdRequested(call_id), "unhold")

    async def transfer(
        self, call_id: str, body: TransferRequest, actor: Principal
    ) -> CallWithTimeline:
        return await self._ask(
            call_id, actor, lambda: self._transfer_event(call_id, body), f"transfer_{body.mode}"
        )

    def _transfer_event(self, call_id: str, body: TransferRequest) -> ev.TransferRequested:
        """What is asked, checked against the settings (after the call was found)."""
        target = body.target
        mode = ev.TransferMode(body.mode)
        if isinstance(target, ExternalTarget):
            if not self._settings.external_context:
                raise TransferNotSupported(
                    "External transfers are not configured (transfers.external_context)",
                    field="target.type",
                )
            if mode is ev.TransferMode.ATTENDED:
                raise TransferNotSupported("An external transfer is blind only", field="mode")
            return ev.TransferRequested(
                call_id,
                mode,
                ev.TargetKind.EXTERNAL,
                target.number,
                self._settings.external_context,
            )
        if mode is ev.TransferMode.ATTENDED and not isinstance(target, OperatorTarget):
            raise TransferNotSupported(
                "An attended transfer consults an operator: target.type operator", field="mode"
            )
        return ev.TransferRequested(call_id, mode, ev.TargetKind(target.type), target.id)

    async def complete(self, call_id: str, actor: Principal) -> CallWithTimeline:
        return await self._ask(
            call_id, actor, lambda: ev.TransferCompleteRequested(call_id), "transfer_complete"
        )

    async def cancel(self, call_id: str, actor: Principal) -> CallWithTimeline:
        return await self._ask(
            call_id, actor, lambda: ev.TransferCancelRequested(call_id), "transfer_cancel"
        )

    # --- the one path of every request ------------------------------------------------------
    async def _ask(
        self, call_id: str, actor: Principal, request: Callable[[], ev.Event], what: str
    ) -> CallWithTimeline:
        await self._calls.get(call_id, actor)  # 404 outside the actor's scope, first
        await self._may_act(call_id, actor)
        refused = await self._dispatcher.request(request())
        if refused is not None:
            error = _ERRORS[refused.refusal]
            field = "target.id" if refused.refusal in _TARGET_REFUSALS else None
            if refused.refusal is cmd.Refusal.UNSUPPORTED:
                field = "target.type"
            raise error(refused.detail, field=field)
        log.info("call_request_done", call_id=call_id, request=what, by=actor.id)
        return await self._calls.get(call_id, actor)

    async def _may_act(self, call_id: str, actor: Principal) -> None:
        """Operators: only the call they are talking on now (admins, managers and the
        group's supervisors are held to the call's visibility alone)."""
        if actor.role is not Role.OPERATOR:
            return
        operator = await self._directory.for_user(actor.id)
        talking = self._dispatcher.operator_talking_on(call_id)
        if operator is None or talking != operator.id:
            raise PermissionDenied("Operators may act only on the call they are talking on")
