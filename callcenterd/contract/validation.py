"""422 answers in the contract's form: a ``detail`` list of {loc, msg, type, ctx}."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from callcenterd.errors import CallcenterError


class RequestInvalid(CallcenterError):
    status, code, type = 422, "DB_003", "validation_error"
    default_detail = "Request validation failed"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        # The deepest name in the first error's location: ["body", "skills", 0] is "skills".
        names = [part for part in items[0]["loc"][1:] if isinstance(part, str)] if items else []
        field = names[-1] if names else None
        super().__init__(items[0]["msg"] if items else None, field=field)
        self.items = items

    def body(self) -> dict[str, Any]:
        return {"detail": self.items, "type": self.type, "code": self.code, "field": self.field}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def validation_error(err: ValidationError, where: str) -> RequestInvalid:
    items = []
    for item in err.errors(include_url=False):
        entry: dict[str, Any] = {
            "loc": [where, *item["loc"]],
            "msg": item["msg"],
            "type": item["type"],
        }
        if item.get("ctx"):
            entry["ctx"] = {key: _plain(val) for key, val in item["ctx"].items()}
        items.append(entry)
    return RequestInvalid(items)


def body_error(message: str, kind: str) -> RequestInvalid:
    return RequestInvalid([{"loc": ["body"], "msg": message, "type": kind}])


def field_error(where: str, name: str, message: str, kind: str = "value_error") -> RequestInvalid:
    """A 422 raised by a service for a rule pydantic cannot see (e.g. an unknown group)."""
    return RequestInvalid([{"loc": [where, name], "msg": message, "type": kind}])


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's JSON schema without its null branch (and a null default): for a value
    that may be left out but not sent as null, such as an optional query parameter."""
    branches = [branch for branch in schema.get("anyOf", []) if branch != {"type": "null"}]
    if len(branches) != 1 or len(schema["anyOf"]) != 2:
        return schema
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    if schema.get("default") is not None:
        rest["default"] = schema["default"]
    return {**branches[0], **rest}
