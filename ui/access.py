"""Who may reach the app: loopback only, unless a username and password are configured."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_problem(settings: Settings) -> str | None:
    """Why the app must not start with these access settings, or None when it may."""
    has_user = bool(settings.auth_username)
    has_password = bool(settings.auth_password and settings.auth_password.get_secret_value())
    if has_user != has_password:
        return ("Set both OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD (one is missing), or neither to run "
                "on loopback only.")
    if not is_loopback(settings.host) and not has_user:
        return (f"Refusing to listen on {settings.host}: other machines could reach it and the decisions, questions "
                "and logs would be open to anyone. Set OMBUDS_AUTH_USERNAME and OMBUDS_AUTH_PASSWORD to require a "
                "login, or keep the default --host 127.0.0.1.")
    return None


def auth_for(settings: Settings) -> tuple[str, str] | None:
    """Gradio auth pair when a username and password are configured."""
    if settings.auth_username and settings.auth_password:
        return settings.auth_username, settings.auth_password.get_secret_value()
    return None
