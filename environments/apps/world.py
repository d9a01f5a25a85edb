"""Seeded synthetic users and data for the app suite, and the suite that serves API calls.

``make_world(seed)`` builds one supervisor with contacts, text messages, wallet transactions and
money requests, a song catalogue, liked songs and playlists (the three original apps), plus
emails, a calendar, notes and todo lists, a shop and file storage. Everything derives from
``seed``; the original apps' data comes from the same random stream as before the suite grew,
so ``make_world(seed, apps=ORIGINAL_APPS)`` is the old three-app world.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from environments.apps import calendar, email, files, notes, shopping
from environments.apps.calendar import CalendarApp
from environments.apps.email import EmailApp
from environments.apps.files import FilesApp
from environments.apps.framework import ApiError, App
from environments.apps.music import MusicApp
from environments.apps.notes import NotesApp
from environments.apps.phone import PhoneApp
from environments.apps.shopping import ShoppingApp
from environments.apps.supervisor import ApiDocsApp, SupervisorApp
from environments.apps.wallet import WalletApp

FIRST = ["Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Iris", "Jack", "Kara", "Leo", "Mia",
         "Noah", "Olive", "Paul", "Quinn", "Ruby", "Sam", "Tara", "Umar", "Vera", "Will", "Yara", "Zane"]
LAST = ["Adams", "Brooks", "Chen", "Diaz", "Evans", "Fox", "Garcia", "Hill", "Ito", "Jones", "Khan", "Lopez",
        "Moss", "Nash", "Ortiz", "Patel", "Reed", "Shaw", "Tran", "Vance", "Wong", "Young"]
RELATIONSHIPS = ["friend", "family", "coworker", "neighbor", "roommate"]
ARTISTS = ["The Lanterns", "Mira Sol", "Northbound", "Velvet Echo", "DJ Kite", "Ruth Ames", "Copper Hills",
           "Static Bloom"]
GENRES = ["pop", "rock", "jazz", "electronic", "folk"]
WORDS = ["Summer", "Night", "River", "Golden", "Echo", "Stone", "Blue", "Fire", "Paper", "Wild", "Silver",
         "Morning", "Ghost", "Neon", "Ocean", "Velvet", "Dust", "Thunder", "Glass", "Honey"]
NOUNS = ["Road", "Heart", "Dream", "Light", "Song", "Sky", "Rain", "Garden", "City", "Wave"]
MESSAGES = ["See you tomorrow!", "Can you call me back?", "Running late, sorry.", "Happy birthday!",
            "Did you get my email?", "Lunch on Friday?", "Thanks for yesterday.", "On my way."]
PAY_NOTES = ["dinner", "movie tickets", "groceries", "rent share", "concert", "taxi", "gift", "coffee"]

APP_CLASSES: dict[str, type[App]] = {cls.name: cls for cls in (
    PhoneApp, WalletApp, MusicApp, EmailApp, CalendarApp, NotesApp, ShoppingApp, FilesApp, SupervisorApp)}
ORIGINAL_APPS = ("phone", "wallet", "music")
ALL_APPS = (*ORIGINAL_APPS, "email", "calendar", "notes", "shopping", "files")


def make_world(seed: int, apps: tuple[str, ...] = ALL_APPS) -> dict[str, Any]:
    """A fresh database for one seed: ``{"meta", "supervisor", "accounts", <app>: tables}`` for ``apps``
    (which must include the three original apps: every other app's people come from the phone)."""
    unknown = set(apps) - set(ALL_APPS)
    if unknown or not set(ORIGINAL_APPS) <= set(apps):
        raise ValueError(f"apps must include {ORIGINAL_APPS} and come from {ALL_APPS}, got {apps}")
    rng = random.Random(seed)
    people = rng.sample([(f, last) for f in FIRST for last in LAST], 22)
    me_first, me_last = people[0]
    supervisor = {"first_name": me_first, "last_name": me_last, "email": f"{me_first.lower()}.{me_last.lower()}@mail.com",
                  "phone_number": f"555{rng.randrange(10**6, 10**7)}"}
    contacts = {}
    for i, (first, last) in enumerate(people[1:], start=1):
        contacts[i] = {"id": i, "first_name": first, "last_name": last,
                       "phone_number": f"555{rng.randrange(10**6, 10**7)}",
                       "email": f"{first.lower()}.{last.lower()}@mail.com",
                       "relationships": sorted(rng.sample(RELATIONSHIPS, rng.choice((1, 1, 2))))}
    clock = 0

    def tick() -> str:
        nonlocal clock
        clock += rng.randrange(30, 600)
        hours, minutes = divmod(clock, 60)
        return f"2024-05-{1 + hours // 24:02d}T{hours % 24:02d}:{minutes:02d}:00"

    me_phone, me_email = supervisor["phone_number"], supervisor["email"]
    messages, transactions, requests = {}, {}, {}
    for i in range(1, 41):
        other = contacts[rng.randrange(1, len(contacts) + 1)]
        sent = rng.random() < 0.4
        messages[i] = {"id": i, "sender": me_phone if sent else other["phone_number"],
                       "receiver": other["phone_number"] if sent else me_phone, "text": rng.choice(MESSAGES),
                       "sent_at": tick()}
    for i in range(1, 36):
        other = contacts[rng.randrange(1, len(contacts) + 1)]
        sent = rng.random() < 0.5
        transactions[i] = {"id": i, "sender_email": me_email if sent else other["email"],
                           "receiver_email": other["email"] if sent else me_email,
                           "amount": float(rng.randrange(5, 120)), "description": rng.choice(PAY_NOTES),
                           "created_at": tick()}
    for i in range(1, 13):
        other = contacts[rng.randrange(1, len(contacts) + 1)]
        requests[i] = {"id": i, "requester_email": other["email"], "payer_email": me_email,
                       "amount": float(rng.randrange(5, 80)), "description": rng.choice(PAY_NOTES),
                       "status": rng.choice(("pending", "pending", "approved", "declined")), "created_at": tick()}
    songs = {}
    titles = rng.sample([f"{w} {n}" for w in WORDS for n in NOUNS], 48)
    for i, title in enumerate(titles, start=1):
        songs[i] = {"id": i, "title": title, "artist": rng.choice(ARTISTS), "genre": rng.choice(GENRES),
                    "duration": rng.randrange(120, 360)}
    liked_ids = rng.sample(sorted(songs), 14)
    play_counts = rng.sample(range(1, 200), len(liked_ids))  # distinct, so "most played" is unique
    liked = {sid: {"id": sid, "my_play_count": pc} for sid, pc in zip(sorted(liked_ids), play_counts)}
    playlists = {}
    for i, title in enumerate(rng.sample(["Road Trip", "Focus", "Workout", "Chill Evening", "Party", "Sunday"], 4),
                              start=1):
        playlists[i] = {"id": i, "title": title, "song_ids": rng.sample(sorted(songs), rng.randrange(5, 11))}
    accounts = {
        "phone": {"username": me_phone, "password": f"ph-{rng.randrange(10**5, 10**6)}"},
        "wallet": {"username": me_email, "password": f"wa-{rng.randrange(10**5, 10**6)}"},
        "music": {"username": me_email, "password": f"mu-{rng.randrange(10**5, 10**6)}"},
    }
    world = {
        "meta": {"seed": seed, "clock": 0}, "supervisor": supervisor, "accounts": accounts,
        "phone": {"contacts": contacts, "messages": messages},
        "wallet": {"account": {1: {"id": 1, "email": me_email, "balance": float(rng.randrange(400, 900))}},
                   "transactions": transactions, "requests": requests},
        "music": {"songs": songs, "liked": liked, "playlists": playlists},
    }
    _add_new_apps(world, [a for a in apps if a not in ORIGINAL_APPS], random.Random(seed * 7919 + 17))
    return world


def _add_new_apps(world: dict[str, Any], apps: list[str], rng: random.Random) -> None:
    """Data and accounts of the apps added after the original three, from their own random stream."""
    me, contacts = world["supervisor"], world["phone"]["contacts"]
    clock = 0

    def stamp() -> str:
        nonlocal clock
        clock += rng.randrange(20, 400)
        hours, minutes = divmod(clock, 60)
        return f"2024-05-{1 + hours // 24:02d}T{hours % 24:02d}:{minutes:02d}:00"

    shop = shopping.generate(rng, me, stamp)
    in_stock = sorted(p["name"] for p in shop["products"].values() if p["stock"] > 0)
    owed = [f"{c['first_name']} {c['last_name']}: ${rng.randrange(10, 50)}" for c in rng.sample(list(contacts.values()), 3)]
    tables = {
        "email": lambda: email.generate(rng, me, contacts, stamp),
        "calendar": lambda: calendar.generate(rng, me, contacts),
        "notes": lambda: notes.generate(rng, rng.sample(in_stock, 3), owed, stamp),
        "shopping": lambda: shop,
        "files": lambda: files.generate(rng, me, contacts, stamp),
    }
    for app in apps:
        world[app] = tables[app]()
        world["accounts"][app] = {"username": me["email"], "password": f"{app[:2]}-{rng.randrange(10**5, 10**6)}"}


class AppSuite:
    """All apps over one database, serving API calls by name (the host side of the sandbox)."""

    def __init__(self, db: dict[str, Any]):
        self.db = db
        accounts = db["accounts"]
        classes = {name: cls for name, cls in APP_CLASSES.items() if name in db or name == SupervisorApp.name}
        self.apps: dict[str, App] = {name: cls(db, accounts) for name, cls in classes.items()}
        self.app_names = [name for name in classes if name != SupervisorApp.name]
        self.docs = ApiDocsApp(classes)
        self.calls = 0

    @property
    def supervisor(self) -> SupervisorApp:
        return self.apps["supervisor"]  # type: ignore[return-value]

    def call(self, app: str, api_name: str, kwargs: dict[str, Any]) -> Any:
        """Run one API call; raises :class:`ApiError` with a message for the agent on any refusal."""
        self.calls += 1
        if not isinstance(app, str) or not isinstance(api_name, str) or not isinstance(kwargs, dict):
            raise ApiError("malformed API call")
        if app == self.docs.name:
            return self.docs.call(api_name, kwargs)
        if app not in self.apps:
            raise ApiError(f"unknown app {app!r}; see apis.api_docs.show_app_descriptions()")
        if api_name.startswith("_"):
            raise ApiError(f"app {app!r} has no API {api_name!r}")
        try:
            return self.apps[app].call(api_name, kwargs)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ApiError(f"{app}.{api_name} failed on its arguments: {exc}") from None

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the app tables (what the evaluator compares)."""
        return {app: copy.deepcopy(self.db[app]) for app in self.app_names}


def diff_state(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, dict[str, list]]]:
    """Per app and table: rows ``added``, ``removed`` and ``updated`` (as (old, new) pairs)."""
    out: dict[str, dict[str, dict[str, list]]] = {}
    for app, tables in after.items():
        for table, rows in tables.items():
            old_rows = before.get(app, {}).get(table, {})
            change = {
                "added": [rows[k] for k in rows if k not in old_rows],
                "removed": [old_rows[k] for k in old_rows if k not in rows],
                "updated": [(old_rows[k], rows[k]) for k in rows if k in old_rows and old_rows[k] != rows[k]],
            }
            if any(change.values()):
                out.setdefault(app, {})[table] = change
    return out
