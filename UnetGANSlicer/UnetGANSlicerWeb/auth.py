"""Sign-in for the page, as Jupyter does it: a token in the first link, or a password, then a cookie.

Every HTTP request and websocket of the page (the launcher's and each session's
process: a cookie is per host, not per port) passes :meth:`SignIn.middleware`.
Without a valid cookie a request gets a bare 403 (or, with a password, a sign-in
form), never the page or its title. Tokens, passwords and cookies are compared
in constant time (``hmac.compare_digest``); the cookie value is a random secret
of this server, never the token or the password itself.
"""
from __future__ import annotations

import asyncio
import hmac
import html
import os
import secrets
from pathlib import Path

COOKIE = "unetgan_signed_in"
COOKIE_ENV = "UNETGAN_WEB_COOKIE"  # the launcher hands its cookie secret to the session processes it starts
TOKEN_ENV = "UNETGAN_WEB_TOKEN"
PASSWORD_ENV = "UNETGAN_WEB_PASSWORD"
LOGIN_PATH = "/login"
WRONG_PASSWORD_DELAY_S = 1.0  # slows guessing; the page's own users never notice
FORBIDDEN = "403 Forbidden: sign in with the link printed when the server started"

_LOGIN_FORM = """<!doctype html><meta charset="utf-8"><title>Sign in</title>
<form method="post" action="{action}" style="font-family:sans-serif;margin:4em auto;width:20em">
<p>{message}</p><input type="password" name="password" autofocus style="width:100%">
<p><button type="submit">Sign in</button></p></form>"""


class SignInError(ValueError):
    """The sign-in settings cannot be used (the message is the one line printed)."""


def _same(given, expected: str | None) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


class SignIn:
    """Who may use the page: anyone (``required`` False: loopback without a token), a token or a password."""

    def __init__(self, token: str | None = None, password: str | None = None, cookie_secret: str | None = None,
                 required: bool | None = None):
        self.token = token or None
        self.password = password or None
        self.cookie_secret = cookie_secret or secrets.token_urlsafe(32)
        # a session process of the launcher knows neither: it checks the launcher's cookie only
        self.required = bool(self.token or self.password) if required is None else required

    @classmethod
    def from_options(cls, host_is_loopback: bool, token: str | None = None, password_file=None,
                     environ=os.environ) -> "SignIn":
        """``token``: a value, or "auto" (a new random one, printed at start); also read from $UNETGAN_WEB_TOKEN.
        The password: first line of ``password_file``, else $UNETGAN_WEB_PASSWORD. Beyond loopback one is needed."""
        token = token or environ.get(TOKEN_ENV) or None
        if token == "auto":
            token = secrets.token_urlsafe(32)
        password = None
        if password_file is not None:
            try:
                password = (Path(password_file).read_text(encoding="utf-8").splitlines() or [""])[0].strip()
            except OSError as err:
                raise SignInError(f"cannot read the password file {password_file}: {err.strerror or err}") from None
            if not password:
                raise SignInError(f"the password file {password_file} is empty")
        password = password or environ.get(PASSWORD_ENV) or None
        if not host_is_loopback and not (token or password):
            raise SignInError("refusing to serve beyond 127.0.0.1 without sign-in: add --token (a token is printed) "
                              f"or --password-file FILE (or set {TOKEN_ENV} / {PASSWORD_ENV})")
        return cls(token, password, environ.get(COOKIE_ENV) or None)

    def link(self, url: str) -> str:
        """The address to open (with the token, as Jupyter prints it)."""
        return f"{url}?token={self.token}" if self.token else url

    def signed_in(self, request) -> bool:
        return not self.required or _same(request.cookies.get(COOKIE), self.cookie_secret)

    def _grant(self, response):
        response.set_cookie(COOKIE, self.cookie_secret, httponly=True, samesite="Strict", path="/")
        return response

    def middleware(self):
        """An aiohttp middleware: only signed-in requests reach the handlers."""
        from aiohttp import web

        @web.middleware
        async def require_sign_in(request, handler):
            if self.signed_in(request):
                return await handler(request)
            if self.token and _same(request.query.get("token"), self.token):
                # the printed link: keep the rest of the query, drop the token from the address bar
                query = {k: v for k, v in request.query.items() if k != "token"}
                return self._grant(web.HTTPFound(str(request.rel_url.with_query(query))))
            if self.password and request.path == LOGIN_PATH and request.method == "POST":
                form = await request.post()
                if _same(form.get("password"), self.password):
                    return self._grant(web.HTTPFound("/"))
                await asyncio.sleep(WRONG_PASSWORD_DELAY_S)
                return self._form(web, "Wrong password.", status=403)
            if self.password and request.method == "GET" and request.headers.get("Upgrade", "").lower() != "websocket":
                return self._form(web, "Password:", status=401)
            return web.Response(status=403, text=FORBIDDEN, content_type="text/plain")

        return require_sign_in

    @staticmethod
    def _form(web, message: str, status: int):
        return web.Response(status=status, content_type="text/html",
                            text=_LOGIN_FORM.format(action=LOGIN_PATH, message=html.escape(message)))

    def protect(self, aiohttp_app) -> None:
        """Put the middleware first on an aiohttp application (before it starts)."""
        if self.required:
            aiohttp_app.middlewares.insert(0, self.middleware())
