"""Dependencies of the live IoT routes: the runtime, and the role each route needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.deps import PrincipalDep, require
from layers import STAFF, Role
from twin.auth import Principal
from twin.errors import Unavailable
from twin.iot import IotRuntime

DEVICES = frozenset({Role.DEVICE})
OPERATORS = frozenset({Role.OPERATOR})


def get_runtime(request: Request) -> IotRuntime:
    """The IoT runtime started by the app's lifespan."""
    runtime: IotRuntime | None = getattr(request.app.state, "iot", None)
    if runtime is None:
        raise Unavailable("the live IoT pipeline is not running")
    return runtime


def device_caller(principal: PrincipalDep) -> Principal:
    """A caller with the ``device`` role (gateways) or ``admin``."""
    require(principal.role, DEVICES, "ingesting readings")
    return principal


def staff_caller(principal: PrincipalDep) -> Principal:
    """A caller who may read alarms and readings: inspector, operator or admin."""
    require(principal.role, STAFF, "alarms and readings")
    return principal


def operator_caller(principal: PrincipalDep) -> Principal:
    """A caller who may act on alarms: operator or admin."""
    require(principal.role, OPERATORS, "acknowledging and resolving alarms")
    return principal


RuntimeDep = Annotated[IotRuntime, Depends(get_runtime)]
DeviceDep = Annotated[Principal, Depends(device_caller)]
StaffDep = Annotated[Principal, Depends(staff_caller)]
OperatorDep = Annotated[Principal, Depends(operator_caller)]
