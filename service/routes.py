"""The one route table: every path of the API, each route named."""

from __future__ import annotations

from aiohttp import web

from service import auth, health, notifications, push, unsubscribe, users

API = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health.health, name="health")
    app.add_routes([
        web.post(f"{API}/auth/register", auth.register, name="register"),
        web.post(f"{API}/auth/verify_email", auth.verify_email, name="verify_email"),
        web.post(f"{API}/auth/login", auth.login, name="login"),
        web.post(f"{API}/auth/logout", auth.logout, name="logout"),
        web.post(f"{API}/auth/password", auth.change_password, name="change_password"),
        web.post(f"{API}/auth/password_reset", auth.request_password_reset,
                 name="request_password_reset"),
        web.post(f"{API}/auth/password_reset/confirm", auth.confirm_password_reset,
                 name="confirm_password_reset"),
        web.get(f"{API}/me", users.get_me, name="get_me"),
        web.patch(f"{API}/me", users.update_me, name="update_me"),
        web.get(f"{API}/users", users.search_users, name="search_users"),
        web.get(f"{API}/users/{{id}}", users.get_user, name="get_user"),
        web.get(f"{API}/notifications", notifications.list_notifications,
                name="list_notifications"),
        web.get(f"{API}/notifications/unread_count", notifications.unread_count,
                name="notifications_unread_count"),
        web.post(f"{API}/notifications/read_all", notifications.mark_all_read,
                 name="mark_all_notifications_read"),
        web.post(f"{API}/notifications/{{id}}/read", notifications.mark_read,
                 name="mark_notification_read"),
        web.get(f"{API}/notifications/preferences", notifications.get_preferences,
                name="get_notification_preferences"),
        web.put(f"{API}/notifications/preferences", notifications.put_preferences,
                name="put_notification_preferences"),
        web.get(f"{API}/push/vapid_public_key", push.get_vapid_public_key,
                name="vapid_public_key"),
        web.post(f"{API}/push/subscriptions", push.subscribe, name="push_subscribe"),
        web.delete(f"{API}/push/subscriptions", push.unsubscribe, name="push_unsubscribe"),
        web.get(f"{API}/email/unsubscribe", unsubscribe.confirm_page,
                name="email_unsubscribe_page"),
        web.post(f"{API}/email/unsubscribe", unsubscribe.unsubscribe, name="email_unsubscribe"),
    ])
