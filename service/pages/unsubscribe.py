"""/email/unsubscribe: RFC 8058 one-click unsubscribe, and the page a browser sees first.

Mail clients POST to the List-Unsubscribe URL; a person who opens it gets a confirmation page
whose button does that POST. No login: the signed token is the authority, and it only ever
turns one email type off (or deletes one job alert) for the user it names.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from service.api.schemas import UnsubscribeQuery
from service.appkeys import SETTINGS, STORES
from service.errors import BadRequest
from service.validation import decode_query
from sql import alerts, notifications
from tasks.unsubscribe import UnsubscribeTarget, read_unsubscribe_token

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TYPE_NAMES = {
    "application_received": "new application", "application_status": "application update",
    "job_closed": "job closed", "message": "unread message", "job_alert": "job alert",
}


def _target(request: web.Request) -> UnsubscribeTarget:
    query = decode_query(request.query, UnsubscribeQuery)
    target = read_unsubscribe_token(request.app[SETTINGS].secret_key, query.token)
    if target is None:
        raise BadRequest("This unsubscribe link is not valid.", fields={"token": "is invalid"})
    return target


async def confirm_page(request: web.Request) -> web.Response:
    try:
        target = _target(request)
    except BadRequest:
        return _page(request, "unsubscribe.html", {"valid": False}, status=400)
    return _page(request, "unsubscribe.html", {
        "valid": True, "done": False, "token": request.query["token"],
        "what": TYPE_NAMES.get(target.email_type, target.email_type)})


async def unsubscribe(request: web.Request) -> web.Response:
    target = _target(request)
    db = request.app[STORES].db
    if target.email_type == "job_alert" and target.alert_id is not None:
        await alerts.delete_alert(db, target.user_id, target.alert_id)
    else:
        await notifications.turn_email_off(db, target.user_id, target.email_type)
    if "text/html" in request.headers.get("Accept", ""):  # the confirmation page's button
        return _page(request, "unsubscribe.html", {
            "valid": True, "done": True,
            "what": TYPE_NAMES.get(target.email_type, target.email_type)})
    return web.Response(status=204)


def _page(request: web.Request, template: str, context: dict[str, object],
          status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(HTML_HEADERS)
    return response
