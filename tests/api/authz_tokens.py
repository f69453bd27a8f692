"""What an attacker can put where a token goes: malformed headers, forged and altered JWTs.

Each forgery starts from a real token the daemon issued (HS256 over {sub, jti, iat, exp, gen})
and changes one thing; none of them may authenticate.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

WRONG_KEY = b"not-the-daemon-signing-key-0123456789abcdef"
ADMIN_BASIC = base64.b64encode(b"admin:admin-pass").decode()


@dataclass(frozen=True)
class Sent:
    """How a request carries (or fails to carry) its credentials."""

    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_part(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(_unb64(token.split(".")[1]))
    return claims


def _header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(_unb64(token.split(".")[0]))
    return header


def _signature_of(token: str) -> str:
    return token.split(".")[2]


def _joined(header: dict[str, Any], claims: dict[str, Any], signature: str) -> str:
    return f"{_json_part(header)}.{_json_part(claims)}.{signature}"


def _altered(token: str, **changes: Any) -> str:
    """The same header and signature over changed claims."""
    return _joined(_header_of(token), {**claims_of(token), **changes}, _signature_of(token))


def _flipped(signature: str) -> str:
    # The first character: all six of its bits are signature bits (the last one's may not be).
    first = "A" if signature[0] != "A" else "B"
    return first + signature[1:]


def forged_tokens(token: str, other_token: str) -> dict[str, str]:
    """Forgeries of `token`; `other_token` is another user's real token (the admin's, for
    anyone but the admin), whose identity and signature the forgeries try to borrow."""
    claims = claims_of(token)
    other = claims_of(other_token)
    header = _header_of(token)
    day = 24 * 3600
    return {
        "signed with a wrong key": jwt.encode(claims, WRONG_KEY, algorithm="HS256"),
        "another user's sub, wrong key": jwt.encode(
            {**claims, "sub": other["sub"]}, WRONG_KEY, algorithm="HS256"
        ),
        "alg none, unsigned": _joined({"alg": "none", "typ": "JWT"}, claims, ""),
        "alg none, signature kept": _joined(
            {"alg": "none", "typ": "JWT"}, claims, _signature_of(token)
        ),
        "alg HS512, signature kept": _joined(
            {**header, "alg": "HS512"}, claims, _signature_of(token)
        ),
        "signature stripped": _joined(header, claims, ""),
        "signature altered": _joined(header, claims, _flipped(_signature_of(token))),
        "sub swapped to another user's": _altered(token, sub=other["sub"]),
        "exp extended by 30 days": _altered(token, exp=claims["exp"] + 30 * day),
        "gen changed": _altered(token, gen=int(claims.get("gen", 0)) + 1),
        "jti changed": _altered(token, jti=uuid.uuid4().hex),
        "role claim added": _altered(token, role="admin"),
        "another user's signature": _joined(header, claims, _signature_of(other_token)),
        "another user's claims, own signature": _joined(header, other, _signature_of(token)),
        "truncated": token[: len(token) // 2],
    }


def forged_requests(token: str, other_token: str) -> dict[str, Sent]:
    """The forgeries sent as Bearer tokens, and the real token sent where it does not count."""
    sent = {
        name: Sent({"Authorization": f"Bearer {forged}"})
        for name, forged in forged_tokens(token, other_token).items()
    }
    sent.update(
        {
            "token without a scheme": Sent({"Authorization": token}),
            "token under another scheme": Sent({"Authorization": f"Token {token}"}),
            "token as Basic credentials": Sent({"Authorization": f"Basic {token}"}),
            "two tokens": Sent({"Authorization": f"Bearer {token} {token}"}),
            # ?token= is the WebSocket's; REST reads the header only.
            "token in the query string only": Sent(params={"token": token}),
        }
    )
    return sent


# Credentials that name no user at all: the same for every role.
MALFORMED: dict[str, Sent] = {
    "no token": Sent(),
    "empty header": Sent({"Authorization": ""}),
    "Bearer alone": Sent({"Authorization": "Bearer"}),
    "Bearer and spaces": Sent({"Authorization": "Bearer    "}),
    "Basic with the admin's password": Sent({"Authorization": f"Basic {ADMIN_BASIC}"}),
    "garbage": Sent({"Authorization": "Bearer not-a-jwt"}),
    "three empty parts": Sent({"Authorization": "Bearer .."}),
    "JSON where a token goes": Sent({"Authorization": 'Bearer {"sub":"admin"}'}),
}

# First WebSocket frames that are not a valid auth message (sent as text unless bytes).
WS_BAD_HELLOS: dict[str, str | bytes] = {
    "garbage token": json.dumps({"type": "auth", "token": "not-a-jwt"}),
    "empty token": json.dumps({"type": "auth", "token": ""}),
    "no token field": json.dumps({"type": "auth"}),
    "ping before auth": json.dumps({"type": "ping"}),
    "subscribe before auth": json.dumps({"type": "subscribe", "events": ["call_started"]}),
}

# First frames the socket cannot read at all: closed with the WebSocket protocol's own codes
# (1007 invalid payload, 1003 unsupported data) before any token is looked at.
WS_UNREADABLE_HELLOS: dict[str, tuple[str | bytes, int]] = {
    "not JSON": ("Bearer x", 1007),
    "a binary frame": (b"\x00\x01", 1003),
}
