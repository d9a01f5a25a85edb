"""The two helper apps every episode has: ``supervisor`` (the user) and ``api_docs``."""

from __future__ import annotations

from typing import Any

from environments.apps.framework import ApiError, App, api


class SupervisorApp(App):
    """The person the agent works for: profile, account passwords and task completion."""

    name = "supervisor"
    description = "Supervisor: your user's profile and account passwords, and complete_task to finish the task."
    has_login = False

    def __init__(self, db: dict[str, Any], accounts: dict[str, dict[str, str]]):
        super().__init__(db, accounts)
        self.completed = False
        self.answer: Any = None

    @api("Show the supervisor's profile (name, email, phone number).")
    def show_profile(self) -> dict[str, Any]:
        return dict(self.db["supervisor"])

    @api("Show the supervisor's username and password for each app.")
    def show_account_passwords(self) -> list[dict[str, str]]:
        return [{"account_name": app, **acc} for app, acc in sorted(self.accounts.items())]

    @api("Finish the task. Give answer=... when the task asks a question, else leave it out.",
         answer="the answer to the task's question (a string or number), or None")
    def complete_task(self, answer: Any = None) -> dict[str, Any]:
        if self.completed:
            raise ApiError("the task is already completed")
        self.completed, self.answer = True, answer
        return {"message": "task marked as completed"}


class ApiDocsApp:
    """Documentation of every app, discoverable from agent code."""

    name = "api_docs"
    description = "API docs: show_app_descriptions(), show_api_descriptions(app_name), show_api_doc(app_name, api_name)."

    def __init__(self, apps: dict[str, type[App]]):
        self.apps = apps

    def _app(self, app_name: str) -> type[App]:
        if app_name not in self.apps:
            raise ApiError(f"unknown app {app_name!r}; apps: {', '.join(sorted(self.apps))}")
        return self.apps[app_name]

    def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Answer one documentation request."""
        try:
            if api_name == "show_app_descriptions" and not kwargs:
                return [{"name": self.name, "description": self.description}] + [
                    {"name": n, "description": cls.description} for n, cls in sorted(self.apps.items())]
            if api_name == "show_api_descriptions" and set(kwargs) == {"app_name"}:
                cls = self._app(kwargs["app_name"])
                return [{"name": n, "description": cls.api_doc(n)["description"]} for n in cls.api_names()]
            if api_name == "show_api_doc" and set(kwargs) == {"app_name", "api_name"}:
                return self._app(kwargs["app_name"]).api_doc(kwargs["api_name"])
        except TypeError as exc:
            raise ApiError(str(exc)) from None
        raise ApiError("api_docs has show_app_descriptions(), show_api_descriptions(app_name=...) and "
                       "show_api_doc(app_name=..., api_name=...)")
