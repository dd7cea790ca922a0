"""Signing in and out: OIDC authorization code + PKCE, or the owner's one-time link."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ghaf.access.guard import source_of
from ghaf.access.web_sessions import (
    COOKIE,
    COOKIE_TLS,
    CSRF_HEADER,
    SESSION_TTL,
    WebSession,
    csrf_matches,
    encode_session,
    login_link_actor,
    new_session,
    open_login_link,
    seal,
    session_cookie,
    unseal,
)
from ghaf.errors import GhafError, InvalidInputError, PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security import oidc_code
from ghaf.security.identity import Actor
from ghaf.ui.render import page, safe_next

router = APIRouter(prefix="/ui", include_in_schema=False)
LOGIN_COOKIE = "ghaf_login"
LOGIN_PURPOSE = "ghaf-ui-login/1"
LOGIN_TTL_S = 600


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.guard.platform
    return platform


def _tls(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, session: WebSession, target: str) -> RedirectResponse:
    """Redirect to ``target`` with the session's cookie set."""
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE_TLS if _tls(request) else COOKIE,
        encode_session(_platform(request).settings, session),
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        secure=_tls(request),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


def _login_page(request: Request, *, error: str = "", status: int = 200, **extra: Any) -> Response:
    identity = _platform(request).settings.identity
    return page(
        request,
        "login.html",
        {
            "title": "Sign in",
            "oidc": bool(identity.issuer and identity.client_id),
            "issuer": identity.issuer,
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            **extra,
        },
        status=status,
    )


@router.get("/login", name="ui_login")
async def login(request: Request) -> Response:
    """The sign-in page: the organisation's provider, or the owner's link."""
    return _login_page(request)


@router.get("/login/oidc", name="ui_login_oidc")
async def login_oidc(request: Request, next: str = "/ui/runs") -> Response:
    """Send the browser to the provider, holding this login's state, nonce and verifier."""
    platform = _platform(request)
    redirect_uri = str(request.url_for("ui_login_callback"))
    try:
        pending, url = await run_in_threadpool(
            oidc_code.begin, platform.settings.identity, redirect_uri
        )
    except GhafError as exc:
        return _login_page(request, error=exc.headline, status=503)
    held = {
        "state": pending.state,
        "nonce": pending.nonce,
        "verifier": pending.verifier,
        "redirect_uri": redirect_uri,
        "next": safe_next(next),
        "exp": time.time() + LOGIN_TTL_S,
    }
    response = RedirectResponse(url, 303)
    response.set_cookie(
        LOGIN_COOKIE,
        seal(platform.settings, held, LOGIN_PURPOSE),
        max_age=LOGIN_TTL_S,
        path="/ui/login",
        secure=_tls(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/login/callback", name="ui_login_callback")
async def login_callback(
    request: Request,
    code: Annotated[str, Query(max_length=4096)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    """The provider sends the browser back here: verify, then start the session."""
    platform = _platform(request)
    held = unseal(platform.settings, request.cookies.get(LOGIN_COOKIE, ""), LOGIN_PURPOSE)
    if error or held is None or float(held.get("exp", 0)) < time.time() or not code:
        why = f"the provider answered {error}" if error else "this sign-in was not started here"
        return _login_page(request, error=f"{why}: sign in again", status=400)
    pending = oidc_code.PendingLogin(
        str(held["state"]), str(held["nonce"]), str(held["verifier"]), str(held["redirect_uri"])
    )
    try:
        identity = await run_in_threadpool(
            lambda: oidc_code.finish(platform.settings.identity, pending, code=code, state=state)
        )
    except PermissionDeniedError as exc:
        actor = _anonymous(request)
        await run_in_threadpool(
            platform.spine.record_denied,
            actor,
            "auth.authenticate",
            "ui:oidc-login",
            platform.default_project,
            exc.headline,
        )
        return _login_page(request, error=exc.headline, status=403)
    except GhafError as exc:
        return _login_page(request, error=exc.headline, status=503)
    session = new_session(
        identity.subject, "oidc", str(platform.settings.identity.issuer), identity.groups
    )
    return start_session(request, session, safe_next(str(held.get("next"))))


def _anonymous(request: Request) -> Actor:
    return Actor("anonymous", source=source_of(request.client))


@router.get("/login/link/{token}", name="ui_login_link")
async def login_link(request: Request, token: str) -> Response:
    """Open a link from ``ghaf ui login-link``: once, within two minutes, as the owner."""
    platform = _platform(request)
    source = source_of(request.client)
    try:
        if len(token) > 128:
            raise InvalidInputError("this login link is malformed")
        actor = await run_in_threadpool(login_link_actor, platform, token, source)
        session = await run_in_threadpool(open_login_link, platform, actor, token.partition(".")[0])
    except GhafError as exc:
        return _login_page(request, error=exc.headline, status=403)
    return start_session(request, session, "/ui/runs")


@router.post("/logout", name="ui_logout")
async def logout(request: Request) -> Response:
    """End the session (the page's button sends the CSRF header); the cookie is cleared."""
    session = session_cookie(request.cookies, _platform(request).settings)
    if session is not None and not csrf_matches(session, request.headers.get(CSRF_HEADER)):
        return HTMLResponse("sign-out needs the page's CSRF token", 403)
    response = Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
    for name in (COOKIE, COOKIE_TLS):
        response.delete_cookie(name, path="/", secure=name == COOKIE_TLS, httponly=True)
    return response
