"""The admin console: a server-rendered sub-application at /admin for staff.

Its own middleware (``guard``) signs staff in by their own session cookie, checks CSRF and
cross-site POSTs, renders errors as pages and adds the HTML security headers. The parent
application's resources (database, cache, delivery queue) are copied in at startup, once the
parent's ``cleanup_ctx`` has opened them, so the shared helpers read them as usual. The
dashboard's live figures are sampled by the parent (``figures.figures_ctx``), so that task
stops before the resources it uses close.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from service.admin import audit, content, dashboard, deliveries, reports, signin, users
from service.admin.guard import admin_middleware
from service.appkeys import DELIVERY_RUNTIME, SETTINGS, STORES
from service.config import Settings

STYLESHEET = (Path(__file__).parent / "static" / "admin.css").read_bytes()
PARENT = web.AppKey("admin_parent", web.Application)


def create_admin_app(parent: web.Application, settings: Settings) -> web.Application:
    admin = web.Application(middlewares=[admin_middleware])
    admin[SETTINGS] = settings
    admin[PARENT] = parent
    admin.on_startup.append(_share_resources)
    admin.add_routes([
        web.get("/static/admin.css", stylesheet, name="admin_stylesheet"),
        web.get("/login", signin.signin_page, name="admin_signin_page"),
        web.post("/login", signin.signin, name="admin_signin"),
        web.post("/logout", signin.signout, name="admin_signout"),
        web.get("/", dashboard.dashboard_page, name="admin_dashboard"),
        web.get("/users", users.users_page, name="admin_users"),
        web.get("/users/{id}", users.user_page, name="admin_user"),
        web.post("/users/{id}/suspend", users.suspend_user, name="admin_suspend_user"),
        web.post("/users/{id}/reinstate", users.reinstate_user, name="admin_reinstate_user"),
        web.get("/reports", reports.reports_page, name="admin_reports"),
        web.post("/reports/{id}/resolve", reports.resolve_report, name="admin_resolve_report"),
        web.post("/reports/{id}/act", reports.act_on_report, name="admin_act_on_report"),
        web.get("/jobs", content.jobs_page, name="admin_jobs"),
        web.post("/jobs/{id}/close", content.close_job, name="admin_close_job"),
        web.post("/jobs/{id}/delete", content.delete_job, name="admin_delete_job"),
        web.get("/posts", content.posts_page, name="admin_posts"),
        web.post("/posts/{id}/remove", content.remove_post, name="admin_remove_post"),
        web.get("/comments", content.comments_page, name="admin_comments"),
        web.post("/comments/{id}/remove", content.remove_comment, name="admin_remove_comment"),
        web.get("/deliveries", deliveries.deliveries_page, name="admin_deliveries"),
        web.post("/deliveries/retry_dead", deliveries.retry_dead_deliveries,
                 name="admin_retry_dead_deliveries"),
        web.post("/deliveries/{id}/retry", deliveries.retry_delivery,
                 name="admin_retry_delivery"),
        web.get("/audit", audit.audit_page, name="admin_audit"),
    ])
    return admin


async def _share_resources(admin: web.Application) -> None:
    parent = admin[PARENT]
    admin[STORES] = parent[STORES]
    admin[DELIVERY_RUNTIME] = parent[DELIVERY_RUNTIME]


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=STYLESHEET, content_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})
