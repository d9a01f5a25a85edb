"""The API framework of the app suite: documented APIs, access tokens, pagination and errors.

Apps keep their tables in a plain ``db`` dict (``{app: {table: {id: row}}}``) owned by the host
process. Agent code never sees it: it calls APIs by name through the sandbox, and every result is
a JSON copy.
"""

from __future__ import annotations

import functools
import inspect
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

MAX_PAGE_LIMIT = 20
_COMMON_DOCS = {"access_token": "the access_token returned by this app's login"}


class ApiError(Exception):
    """An API refused the call (bad arguments, not logged in, not found...); shown to the agent."""


def api(description: str, /, **param_docs: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an app method as a public API with its description and parameter docs."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__api__ = (description, param_docs)  # type: ignore[attr-defined]
        return func

    return mark


def paginate(items: list[Any], page_index: int, page_limit: int) -> list[Any]:
    """One page of ``items`` (``page_index`` from 0, at most ``MAX_PAGE_LIMIT`` per page)."""
    if not isinstance(page_index, int) or page_index < 0:
        raise ApiError("page_index must be a non-negative integer")
    if not isinstance(page_limit, int) or not 1 <= page_limit <= MAX_PAGE_LIMIT:
        raise ApiError(f"page_limit must be an integer between 1 and {MAX_PAGE_LIMIT}")
    return items[page_index * page_limit:(page_index + 1) * page_limit]


def exchanged(rows: Iterable[dict[str, Any]], me: str, direction: str, other: str | None, sender: str, receiver: str,
              when: str) -> list[dict[str, Any]]:
    """The rows (messages, transactions) between ``me`` and someone, newest first (by ``when``, then id):
    ``direction`` 'sent', 'received' or 'all', and only those with the counterpart ``other`` unless it is None.
    ``sender``/``receiver`` name the rows' fields for the two parties."""
    if direction not in ("sent", "received", "all"):
        raise ApiError("direction must be 'sent', 'received' or 'all'")
    out = []
    for row in sorted(rows, key=lambda r: (r[when], r["id"]), reverse=True):
        sent = row[sender] == me
        counterpart = row[receiver] if sent else row[sender]
        if other is not None and counterpart != other:
            continue
        if direction == "sent" and not sent or direction == "received" and sent:
            continue
        out.append(row)
    return out


def switch(row: dict[str, Any], flag: str, value: bool, error: str) -> None:
    """Set ``row[flag]`` to ``value``, or an ``ApiError(error)`` when it already has that value."""
    if bool(row[flag]) == value:
        raise ApiError(error)
    row[flag] = value


def require_text(value: Any, field: str) -> str:
    """``value`` as a non-empty string, or an ``ApiError`` naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(f"{field} must be a non-empty string")
    return value


def require_email(value: Any, field: str = "email") -> str:
    """``value`` if it looks like an email address, else an ``ApiError``."""
    if not isinstance(value, str) or "@" not in value or " " in value.strip():
        raise ApiError(f"{field} must be an email address, got {value!r}")
    return value.strip()


class App:
    """Base of an app: a name, a description, its tables in ``db[name]`` and a login."""

    name = ""
    description = ""
    login_field = "email"  # which supervisor field is the username
    has_login = True  # False for apps without an account (the supervisor)

    def __init__(self, db: dict[str, Any], accounts: dict[str, dict[str, str]]):
        self.db = db
        self.accounts = accounts  # app -> {"username", "password"}
        self.tokens: set[str] = set()

    @property
    def tables(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.db[self.name]

    @api("Log in and get an access token to pass as access_token to the other APIs.",
         username="the account's username (see the supervisor's profile)",
         password="the account's password (see apis.supervisor.show_account_passwords())")
    def login(self, username: str, password: str) -> dict[str, str]:
        account = self.accounts[self.name]
        if username != account["username"] or password != account["password"]:
            raise ApiError("invalid username or password")
        token = secrets.token_hex(8)
        self.tokens.add(token)
        return {"access_token": token, "token_type": "Bearer"}

    def require(self, access_token: str) -> None:
        """Raise unless ``access_token`` came from this app's ``login``."""
        if access_token not in self.tokens:
            raise ApiError(f"invalid or missing access_token: call apis.{self.name}.login(...) first")

    def me(self) -> str:
        """This app's account username (the supervisor's email or phone number, see ``login_field``)."""
        return self.accounts[self.name]["username"]

    def now(self) -> str:
        """The suite's clock: a deterministic timestamp that advances one minute per call."""
        meta = self.db["meta"]
        meta["clock"] += 1
        hours, minutes = divmod(meta["clock"], 60)
        return f"2024-06-{1 + hours // 24:02d}T{hours % 24:02d}:{minutes:02d}:00"

    def next_id(self, table: str) -> int:
        """The next free integer id of a table."""
        rows = self.tables[table]
        return max(rows, default=0) + 1

    def find(self, table: str, row_id: Any, what: str) -> dict[str, Any]:
        """A row by id, or an ``ApiError`` naming what was not found."""
        row = self.tables[table].get(row_id) if isinstance(row_id, int) else None
        if row is None:
            raise ApiError(f"{what} with id {row_id!r} not found")
        return row

    def delete(self, table: str, row_id: Any, what: str) -> None:
        """Delete a row by id, or an ``ApiError`` naming what was not found."""
        self.find(table, row_id, what)
        del self.tables[table][row_id]

    # -- introspection -----------------------------------------------------------------------------
    @classmethod
    def api_names(cls) -> list[str]:
        """Names of the public APIs."""
        return list(_api_names(cls))

    @classmethod
    def api_doc(cls, api_name: str) -> dict[str, Any]:
        """The documentation of one API: description, parameters (type, required, default)."""
        if api_name not in _api_names(cls):
            raise ApiError(f"app {cls.name!r} has no API {api_name!r}; see show_api_descriptions(app_name={cls.name!r})")
        description, param_docs = getattr(cls, api_name).__api__
        params = []
        for pname, param in _signature(cls, api_name).parameters.items():
            entry: dict[str, Any] = {"name": pname, "type": str(param.annotation),
                                     "required": param.default is inspect.Parameter.empty,
                                     "description": param_docs.get(pname, _COMMON_DOCS.get(pname, ""))}
            if param.default is not inspect.Parameter.empty:
                entry["default"] = param.default
            params.append(entry)
        return {"app_name": cls.name, "api_name": api_name, "description": description, "parameters": params}

    def call(self, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Validate the arguments and run an API; results are returned as JSON copies."""
        if api_name not in _api_names(type(self)):
            raise ApiError(f"app {self.name!r} has no API {api_name!r}; see "
                           f"apis.api_docs.show_api_descriptions(app_name={self.name!r})")
        method = getattr(self, api_name)
        signature = _signature(type(self), api_name)
        unknown = set(kwargs) - set(signature.parameters)
        if unknown:
            raise ApiError(f"{self.name}.{api_name} got unknown parameter(s): {', '.join(sorted(unknown))}")
        missing = [p for p, spec in signature.parameters.items()
                   if spec.default is inspect.Parameter.empty and p not in kwargs]
        if missing:
            raise ApiError(f"{self.name}.{api_name} is missing required parameter(s): {', '.join(missing)}")
        if "access_token" in signature.parameters:
            self.require(kwargs["access_token"])
        return json.loads(json.dumps(method(**kwargs)))


class FolderApp(App):
    """An app whose items sit in named folders (the ``folders`` table: ``{id: {"id", "name"}}``)."""

    def _folder_names(self) -> list[str]:
        return [f["name"] for _, f in sorted(self.tables["folders"].items())]

    def _folder(self, folder: Any) -> str:
        """``folder`` if it exists, else an ``ApiError`` listing the folders."""
        if folder not in self._folder_names():
            raise ApiError(f"no folder {folder!r}; folders: {', '.join(self._folder_names())}")
        return folder

    @api("Create a folder; names must be unique.", name="the folder name")
    def create_folder(self, access_token: str, name: str) -> dict[str, Any]:
        if require_text(name, "name") in self._folder_names():
            raise ApiError(f"a folder named {name!r} already exists")
        folder_id = self.next_id("folders")
        self.tables["folders"][folder_id] = {"id": folder_id, "name": name}
        return {"message": "folder created"}


@functools.cache
def _api_names(cls: type[App]) -> tuple[str, ...]:
    """The public API names of an app class (cached: they are looked up on every call)."""
    return tuple(name for name, member in inspect.getmembers(cls) if hasattr(member, "__api__")
                 and (cls.has_login or name != "login"))


@functools.cache
def _signature(cls: type[App], api_name: str) -> inspect.Signature:
    """The signature of an API of an app class, bound (without ``self``)."""
    signature = inspect.signature(getattr(cls, api_name))
    return signature.replace(parameters=[p for n, p in signature.parameters.items() if n != "self"])
