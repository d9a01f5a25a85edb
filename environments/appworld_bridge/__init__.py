"""Adapter to the real AppWorld through a bridge process running in AppWorld's own virtualenv."""

from __future__ import annotations

from environments.appworld_bridge.adapter import (
    BRIDGE_SCRIPT,
    AppWorldEnv,
    BridgeClient,
    BridgeError,
    config_path,
    configured_python,
)

__all__ = ["BRIDGE_SCRIPT", "AppWorldEnv", "BridgeClient", "BridgeError", "config_path", "configured_python"]
