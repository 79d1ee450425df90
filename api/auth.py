"""Bearer-token authentication: HS256 JWTs whose ``sub`` is the user id, as Supabase issues them.

A token must carry ``sub`` and ``exp``; ``role: "admin"`` makes its user an admin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from videoq.jobs import JobRequest

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
# PyJWT warns about HMAC keys shorter than the hash, 32 bytes for SHA-256 (RFC 7518 3.2).
MIN_SECRET_CHARS = 32
DEFAULT_TOKEN_TTL_SECONDS = 3600
# Clock difference tolerated between the token issuer and this server, seconds.
LEEWAY_SECONDS = 10

# The user id is stored as a job's user_id, so it obeys the same rules.
_USER_ID = TypeAdapter(Annotated[str, JobRequest.model_fields["user_id"]])

MISSING_TOKEN = "missing bearer token"
TOKEN_EXPIRED = "token expired"
TOKEN_NOT_YET_VALID = "token is not valid yet"
BAD_SIGNATURE = "invalid token signature"
BAD_ALGORITHM = f"invalid token algorithm: only {ALGORITHM} is accepted"
BAD_AUDIENCE = "invalid token audience"
MALFORMED_TOKEN = "malformed token"
MISSING_EXP = "token has no exp claim"
MISSING_SUB = "token has no sub claim"
BAD_SUB = "invalid token subject: sub must be a user id of 1 to 128 letters, digits or _.@:-"


class AuthSettings(BaseSettings):
    """Token settings, read from ``VIDEOQ_JWT_SECRET`` and ``VIDEOQ_JWT_AUDIENCE``."""

    # An empty VIDEOQ_JWT_AUDIENCE (as in deploy/.env.example) means unset: aud is not checked.
    model_config = SettingsConfigDict(env_prefix="VIDEOQ_", extra="ignore", env_ignore_empty=True)

    jwt_secret: SecretStr = Field(
        description="HMAC secret of the HS256 tokens, at least 32 characters."
    )
    jwt_audience: str | None = Field(
        default=None,
        description="Expected aud claim (Supabase: authenticated); unset means aud is not checked.",
    )

    @field_validator("jwt_secret")
    @classmethod
    def _check_secret_length(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"VIDEOQ_JWT_SECRET must have at least {MIN_SECRET_CHARS} characters; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return secret


@dataclass(frozen=True)
class User:
    """The caller, as its token identifies it."""

    id: str
    is_admin: bool = False


class InvalidToken(Exception):
    """The token is missing, expired, forged or malformed; the message is the response detail."""


def issue_token(
    secret: str,
    user_id: str,
    *,
    admin: bool = False,
    ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
) -> str:
    """Sign a token for ``user_id`` that expires after ``ttl_seconds``.

    The token has role ``admin`` if ``admin`` is true, else ``authenticated`` as in Supabase.
    """
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    claims["role"] = ADMIN_ROLE if admin else "authenticated"
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, settings: AuthSettings) -> User:
    """Check the token's signature and claims and return its user.

    Raises:
        InvalidToken: with a message that names the problem.
    """
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            leeway=LEEWAY_SECONDS,
            options={
                "require": ["exp", "sub"],
                "verify_aud": settings.jwt_audience is not None,
            },
        )
    except jwt.MissingRequiredClaimError as err:
        raise InvalidToken(MISSING_EXP if err.claim == "exp" else MISSING_SUB) from err
    except jwt.ExpiredSignatureError as err:
        raise InvalidToken(TOKEN_EXPIRED) from err
    except jwt.ImmatureSignatureError as err:
        raise InvalidToken(TOKEN_NOT_YET_VALID) from err
    except jwt.InvalidSignatureError as err:
        raise InvalidToken(BAD_SIGNATURE) from err
    except jwt.InvalidAlgorithmError as err:
        raise InvalidToken(BAD_ALGORITHM) from err
    except (jwt.InvalidAudienceError, jwt.InvalidIssuerError) as err:
        raise InvalidToken(BAD_AUDIENCE) from err
    except jwt.InvalidTokenError as err:
        # DecodeError and claim errors that the cases above do not cover, such as a
        # non-integer exp.
        raise InvalidToken(MALFORMED_TOKEN) from err

    subject = claims.get("sub")
    if not isinstance(subject, str) or not _is_user_id(subject):
        raise InvalidToken(BAD_SUB)
    return User(id=subject, is_admin=claims.get("role") == ADMIN_ROLE)


def _is_user_id(value: str) -> bool:
    try:
        _USER_ID.validate_python(value)
    except ValidationError:
        return False
    return True


# auto_error=False so that a missing token gets this module's 401 and detail; the scheme still
# puts the Authorize button on /docs.
_bearer = HTTPBearer(auto_error=False, description="HS256 JWT whose sub is the user id.")


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """Return the caller; a missing or invalid token is a 401 with ``WWW-Authenticate``."""
    if credentials is None or not credentials.credentials:
        raise _unauthorized(MISSING_TOKEN)
    settings: AuthSettings = request.app.state.auth_settings
    try:
        return decode_token(credentials.credentials, settings)
    except InvalidToken as err:
        raise _unauthorized(str(err)) from err


CurrentUser = Annotated[User, Depends(current_user)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )
