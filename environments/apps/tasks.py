"""Tasks of the app suite: scenarios (task templates) x 3 data variants, with state-based checks.

Each scenario draws its parameters from a seeded world, writes the instruction, a scripted
reference solution (Python code that uses only ``apis``), and checks on the final app state, the
answer and collateral damage (nothing else changed). Task goal completion (TGC) = all checks of a
task pass; scenario goal completion (SGC) = all variants of a scenario pass.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from environments.apps.world import FIRST, LAST, PAY_NOTES, RELATIONSHIPS, make_world

VARIANTS_PER_SCENARIO = 3

LOGIN = '''passwords = {a["account_name"]: a["password"] for a in apis.supervisor.show_account_passwords()}
profile = apis.supervisor.show_profile()
tokens = {app: getattr(apis, app).login(username=passwords_user, password=passwords[app])["access_token"]
          for app, passwords_user in (("phone", profile["phone_number"]), ("wallet", profile["email"]),
                                      ("music", profile["email"]))}

def all_pages(fn, **kwargs):
    out, page = [], 0
    while True:
        batch = fn(page_index=page, page_limit=20, **kwargs)
        out += batch
        if len(batch) < 20:
            return out
        page += 1
'''


@dataclass
class Check:
    """One evaluation check: a name, whether it passed and a detail for failures."""

    name: str
    passed: bool
    detail: str = ""


@dataclass
class Task:
    """One task: a scenario applied to one seeded world."""

    task_id: str
    scenario_id: str
    split: str
    seed: int
    instruction: str
    params: dict[str, Any]
    reference: str
    checker: Callable[[dict[str, Any], dict[str, Any], Any], list[Check]] = field(repr=False)

    def world(self) -> dict[str, Any]:
        """The task's initial database."""
        return make_world(self.seed)


def _full(c: dict[str, Any]) -> str:
    return f"{c['first_name']} {c['last_name']}"


def _only(diff: dict[str, Any], allowed: set[tuple[str, str, str]]) -> Check:
    """Check that the diff has no kind of change outside ``allowed`` (app, table, added|removed|updated)."""
    extra = [f"{app}.{table} {kind}" for app, tables in diff.items() for table, change in tables.items()
             for kind, rows in change.items() if rows and (app, table, kind) not in allowed]
    return Check("no other changes", not extra, "unexpected: " + ", ".join(extra) if extra else "")


def _rows(diff: dict[str, Any], app: str, table: str, kind: str) -> list[Any]:
    return diff.get(app, {}).get(table, {}).get(kind, [])


def _answer_check(answer: Any, expected: Any) -> Check:
    if isinstance(expected, (int, float)):
        try:
            ok = abs(float(str(answer).replace("$", "").replace(",", "")) - float(expected)) < 0.01
        except (TypeError, ValueError):
            ok = False
    else:
        ok = str(answer).strip().strip("'\"").lower() == str(expected).lower()
    return Check("answer", ok, f"expected {expected!r}, got {answer!r}")


def _balance_check(before: dict, after: dict, spent: float) -> Check:
    old, new = before["wallet"]["account"][1]["balance"], after["wallet"]["account"][1]["balance"]
    return Check("balance", abs(old - spent - new) < 0.01, f"expected {old - spent:.2f}, got {new:.2f}")


class Scenario:
    """A task template; subclasses define ``params``, ``instruction``, ``reference`` and ``checks``."""

    id = ""
    split = "train"

    def params(self, world: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        raise NotImplementedError

    def instruction(self, p: dict[str, Any]) -> str:
        raise NotImplementedError

    def reference(self, p: dict[str, Any]) -> str:
        raise NotImplementedError

    def checks(self, p: dict[str, Any], before: dict, after: dict, diff: dict, answer: Any) -> list[Check]:
        raise NotImplementedError


def _contact(world: dict, rng: random.Random, pred: Callable[[dict], bool] = lambda c: True) -> dict | None:
    options = [c for c in world["phone"]["contacts"].values() if pred(c)]
    return rng.choice(options) if options else None


def _received(world: dict, contact: dict) -> list[dict]:
    return [m for m in world["phone"]["messages"].values() if m["sender"] == contact["phone_number"]]


def _top_liked_title(world: dict) -> str:
    liked = world["music"]["liked"]
    best = max(liked.values(), key=lambda r: r["my_play_count"])
    return world["music"]["songs"][best["id"]]["title"]


class TextContact(Scenario):
    id, split = "phone_text_contact", "train"

    def params(self, world, rng):
        c = _contact(world, rng)
        return {"name": _full(c), "phone": c["phone_number"], "text": rng.choice(
            ["I'll be there at 7.", "Can we move our call to Monday?", "The keys are under the mat."])}

    def instruction(self, p):
        return f'Send a text message to my contact {p["name"]} saying exactly: {p["text"]}'

    def reference(self, p):
        return LOGIN + f'''
match = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
apis.phone.send_text_message(access_token=tokens["phone"], phone_number=match["phone_number"], message={p["text"]!r})
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "phone", "messages", "added")
        ok = len(added) == 1 and added[0]["receiver"] == p["phone"] and added[0]["text"].strip() == p["text"]
        return [Check("one message to the contact with the text", ok, f"added: {added}"),
                _only(diff, {("phone", "messages", "added")})]


class AddContact(Scenario):
    id, split = "phone_add_contact", "train"

    def params(self, world, rng):
        taken = {(c["first_name"], c["last_name"]) for c in world["phone"]["contacts"].values()}
        first, last = rng.choice([(f, la) for f in FIRST for la in LAST if (f, la) not in taken])
        return {"first": first, "last": last, "phone": f"777{rng.randrange(10**6, 10**7)}",
                "email": f"{first.lower()}@{last.lower()}.org", "rel": rng.choice(RELATIONSHIPS)}

    def instruction(self, p):
        return (f"Add {p['first']} {p['last']} to my phone contacts with phone number {p['phone']}, email "
                f"{p['email']} and the relationship '{p['rel']}'.")

    def reference(self, p):
        return LOGIN + f'''
apis.phone.add_contact(access_token=tokens["phone"], first_name={p["first"]!r}, last_name={p["last"]!r},
                       phone_number={p["phone"]!r}, email={p["email"]!r}, relationships=[{p["rel"]!r}])
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "phone", "contacts", "added")
        want = {"first_name": p["first"], "last_name": p["last"], "phone_number": p["phone"], "email": p["email"],
                "relationships": [p["rel"]]}
        ok = len(added) == 1 and all(added[0].get(k) == v for k, v in want.items())
        return [Check("contact added with the right fields", ok, f"added: {added}"),
                _only(diff, {("phone", "contacts", "added")})]


class CountRelationship(Scenario):
    id, split = "phone_count_relationship", "train"

    def params(self, world, rng):
        rel = rng.choice(RELATIONSHIPS)
        return {"rel": rel, "count": sum(rel in c["relationships"] for c in world["phone"]["contacts"].values())}

    def instruction(self, p):
        return f"How many of my phone contacts have the relationship '{p['rel']}'? Answer with a number."

    def reference(self, p):
        return LOGIN + f'''
found = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], relationship={p["rel"]!r})
apis.supervisor.complete_task(answer=len(found))
'''

    def checks(self, p, before, after, diff, answer):
        return [_answer_check(answer, p["count"]), _only(diff, set())]


class DeleteReceived(Scenario):
    id, split = "phone_delete_received", "dev"

    def params(self, world, rng):
        c = _contact(world, rng, lambda c: bool(_received(world, c)))
        return {"name": _full(c), "phone": c["phone_number"], "ids": sorted(m["id"] for m in _received(world, c))}

    def instruction(self, p):
        return f"Delete all text messages I received from {p['name']}. Keep everything else."

    def reference(self, p):
        return LOGIN + f'''
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
for msg in all_pages(apis.phone.show_text_messages, access_token=tokens["phone"],
                     phone_number=who["phone_number"], direction="received"):
    apis.phone.delete_text_message(access_token=tokens["phone"], message_id=msg["id"])
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        removed = sorted(m["id"] for m in _rows(diff, "phone", "messages", "removed"))
        return [Check("exactly the received messages deleted", removed == p["ids"], f"removed {removed}"),
                _only(diff, {("phone", "messages", "removed")})]


class UpdateEmail(Scenario):
    id, split = "phone_update_email", "train"

    def params(self, world, rng):
        c = _contact(world, rng)
        return {"name": _full(c), "id": c["id"], "email": f"{c['first_name'].lower()}.{rng.randrange(100, 999)}@work.net"}

    def instruction(self, p):
        return f"Change the email address of my contact {p['name']} to {p['email']}."

    def reference(self, p):
        return LOGIN + f'''
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
apis.phone.update_contact(access_token=tokens["phone"], contact_id=who["id"], email={p["email"]!r})
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        updated = _rows(diff, "phone", "contacts", "updated")
        ok = len(updated) == 1 and updated[0][0]["id"] == p["id"] and \
            updated[0][1] == {**updated[0][0], "email": p["email"]}
        return [Check("only that contact's email changed", ok, f"updated: {updated}"),
                _only(diff, {("phone", "contacts", "updated")})]


class SendMoney(Scenario):
    id, split = "wallet_send_money", "train"

    def params(self, world, rng):
        c = _contact(world, rng)
        return {"name": _full(c), "email": c["email"], "amount": float(rng.randrange(10, 60)),
                "note": rng.choice(PAY_NOTES)}

    def instruction(self, p):
        return f"Send ${p['amount']:.0f} to {p['name']} with my wallet, with the note '{p['note']}'."

    def reference(self, p):
        return LOGIN + f'''
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=who["email"], amount={p["amount"]},
                       description={p["note"]!r})
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "wallet", "transactions", "added")
        ok = len(added) == 1 and added[0]["receiver_email"] == p["email"] and \
            abs(added[0]["amount"] - p["amount"]) < 0.01 and added[0]["description"] == p["note"]
        return [Check("one payment to the contact", ok, f"added: {added}"), _balance_check(before, after, p["amount"]),
                _only(diff, {("wallet", "transactions", "added"), ("wallet", "account", "updated")})]


class TotalReceived(Scenario):
    id, split = "wallet_total_received", "test"

    def params(self, world, rng):
        txs = world["wallet"]["transactions"].values()
        c = _contact(world, rng, lambda c: any(t["sender_email"] == c["email"] for t in txs))
        return {"name": _full(c), "total": sum(t["amount"] for t in txs if t["sender_email"] == c["email"])}

    def instruction(self, p):
        return f"How much money in total have I received from {p['name']} through my wallet? Answer with a number."

    def reference(self, p):
        return LOGIN + f'''
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
txs = all_pages(apis.wallet.show_transactions, access_token=tokens["wallet"], email=who["email"], direction="received")
apis.supervisor.complete_task(answer=sum(t["amount"] for t in txs))
'''

    def checks(self, p, before, after, diff, answer):
        return [_answer_check(answer, p["total"]), _only(diff, set())]


class HandleRequests(Scenario):
    id, split = "wallet_handle_requests", "test"

    def params(self, world, rng):
        pending = [r for r in world["wallet"]["requests"].values() if r["status"] == "pending"]
        emails = {c["email"]: c for c in world["phone"]["contacts"].values()}
        c = emails[rng.choice(sorted({r["requester_email"] for r in pending}))]
        return {"name": _full(c), "email": c["email"],
                "approve": sorted(r["id"] for r in pending if r["requester_email"] == c["email"]),
                "decline": sorted(r["id"] for r in pending if r["requester_email"] != c["email"]),
                "spent": sum(r["amount"] for r in pending if r["requester_email"] == c["email"])}

    def instruction(self, p):
        return (f"In my wallet, approve every pending money request from {p['name']} and decline all other "
                "pending money requests.")

    def reference(self, p):
        return LOGIN + f'''
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
for req in all_pages(apis.wallet.show_money_requests, access_token=tokens["wallet"], status="pending"):
    if req["requester_email"] == who["email"]:
        apis.wallet.approve_money_request(access_token=tokens["wallet"], request_id=req["id"])
    else:
        apis.wallet.decline_money_request(access_token=tokens["wallet"], request_id=req["id"])
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        status = {r["id"]: r["status"] for r in after["wallet"]["requests"].values()}
        approved = all(status.get(i) == "approved" for i in p["approve"])
        declined = all(status.get(i) == "declined" for i in p["decline"])
        paid = sorted(t["receiver_email"] for t in _rows(diff, "wallet", "transactions", "added"))
        return [Check("requests from the person approved", approved), Check("other pending requests declined", declined),
                Check("one payment per approved request", paid == [p["email"]] * len(p["approve"]), f"paid {paid}"),
                _balance_check(before, after, p["spent"]),
                _only(diff, {("wallet", "requests", "updated"), ("wallet", "transactions", "added"),
                             ("wallet", "account", "updated")})]


class PlaylistOfArtist(Scenario):
    id, split = "music_playlist_artist", "train"

    def params(self, world, rng):
        songs = world["music"]["songs"].values()
        artist = rng.choice(sorted({s["artist"] for s in songs}))
        return {"artist": artist, "title": f"Best of {artist}", "song_ids": sorted(s["id"] for s in songs
                                                                                 if s["artist"] == artist)}

    def instruction(self, p):
        return f"Create a music playlist titled '{p['title']}' with every song by {p['artist']} in the catalogue."

    def reference(self, p):
        return LOGIN + f'''
pid = apis.music.create_playlist(access_token=tokens["music"], title={p["title"]!r})["playlist_id"]
for song in all_pages(apis.music.search_songs, artist={p["artist"]!r}):
    apis.music.add_song_to_playlist(access_token=tokens["music"], playlist_id=pid, song_id=song["id"])
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "music", "playlists", "added")
        ok = len(added) == 1 and added[0]["title"] == p["title"] and sorted(added[0]["song_ids"]) == p["song_ids"]
        return [Check("playlist with exactly the artist's songs", ok, f"added: {added}"),
                _only(diff, {("music", "playlists", "added")})]


class TopLikedSong(Scenario):
    id, split = "music_top_liked", "dev"

    def params(self, world, rng):
        return {"title": _top_liked_title(world)}

    def instruction(self, p):
        return "Which of my liked songs have I played the most? Answer with its title."

    def reference(self, p):
        return LOGIN + '''
liked = all_pages(apis.music.show_liked_songs, access_token=tokens["music"])
apis.supervisor.complete_task(answer=max(liked, key=lambda s: s["my_play_count"])["title"])
'''

    def checks(self, p, before, after, diff, answer):
        return [_answer_check(answer, p["title"]), _only(diff, set())]


class RemoveArtistFromPlaylist(Scenario):
    id, split = "music_remove_artist", "test"

    def params(self, world, rng):
        songs = world["music"]["songs"]
        options = [(pl, songs[s]["artist"]) for pl in world["music"]["playlists"].values() for s in pl["song_ids"]]
        playlist, artist = rng.choice(sorted(options, key=lambda o: (o[0]["id"], o[1])))
        return {"playlist": playlist["title"], "playlist_id": playlist["id"], "artist": artist,
                "keep": [s for s in playlist["song_ids"] if songs[s]["artist"] != artist]}

    def instruction(self, p):
        return f"Remove every song by {p['artist']} from my playlist '{p['playlist']}'; keep the other songs."

    def reference(self, p):
        return LOGIN + f'''
pl = [x for x in all_pages(apis.music.show_playlists, access_token=tokens["music"]) if x["title"] == {p["playlist"]!r}][0]
for sid in apis.music.show_playlist(access_token=tokens["music"], playlist_id=pl["id"])["song_ids"]:
    if apis.music.show_song(song_id=sid)["artist"] == {p["artist"]!r}:
        apis.music.remove_song_from_playlist(access_token=tokens["music"], playlist_id=pl["id"], song_id=sid)
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        now = after["music"]["playlists"].get(p["playlist_id"], {}).get("song_ids")
        return [Check("artist's songs removed, others kept in order", now == p["keep"], f"songs now {now}"),
                _only(diff, {("music", "playlists", "updated")})]


class TextTopSong(Scenario):
    id, split = "cross_text_top_song", "test"

    def params(self, world, rng):
        c = _contact(world, rng)
        return {"name": _full(c), "phone": c["phone_number"], "title": _top_liked_title(world)}

    def instruction(self, p):
        return (f"Text {p['name']} the title of the liked song I have played the most (the message must be just "
                "the title).")

    def reference(self, p):
        return LOGIN + f'''
liked = all_pages(apis.music.show_liked_songs, access_token=tokens["music"])
title = max(liked, key=lambda s: s["my_play_count"])["title"]
who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={p["name"]!r})[0]
apis.phone.send_text_message(access_token=tokens["phone"], phone_number=who["phone_number"], message=title)
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "phone", "messages", "added")
        ok = len(added) == 1 and added[0]["receiver"] == p["phone"] and \
            added[0]["text"].strip().lower() == p["title"].lower()
        return [Check("one message with the song title", ok, f"added: {added}"),
                _only(diff, {("phone", "messages", "added")})]


class PayRelationship(Scenario):
    id, split = "cross_pay_relationship", "train"

    def params(self, world, rng):
        contacts = world["phone"]["contacts"].values()
        rels = [r for r in RELATIONSHIPS if 1 <= sum(r in c["relationships"] for c in contacts) <= 6]
        rel = rng.choice(rels)
        emails = sorted(c["email"] for c in contacts if rel in c["relationships"])
        return {"rel": rel, "emails": emails, "amount": float(rng.randrange(5, 25)), "note": rng.choice(PAY_NOTES)}

    def instruction(self, p):
        return (f"Send ${p['amount']:.0f} with my wallet to each of my phone contacts with the relationship "
                f"'{p['rel']}', with the note '{p['note']}'.")

    def reference(self, p):
        return LOGIN + f'''
for who in all_pages(apis.phone.search_contacts, access_token=tokens["phone"], relationship={p["rel"]!r}):
    apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=who["email"], amount={p["amount"]},
                           description={p["note"]!r})
apis.supervisor.complete_task()
'''

    def checks(self, p, before, after, diff, answer):
        added = _rows(diff, "wallet", "transactions", "added")
        ok = sorted(t["receiver_email"] for t in added) == p["emails"] and all(
            abs(t["amount"] - p["amount"]) < 0.01 and t["description"] == p["note"] for t in added)
        return [Check("one payment to each such contact", ok, f"added: {added}"),
                _balance_check(before, after, p["amount"] * len(p["emails"])),
                _only(diff, {("wallet", "transactions", "added"), ("wallet", "account", "updated")})]


SCENARIOS: list[Scenario] = [
    TextContact(), AddContact(), CountRelationship(), DeleteReceived(), UpdateEmail(), SendMoney(), TotalReceived(),
    HandleRequests(), PlaylistOfArtist(), TopLikedSong(), RemoveArtistFromPlaylist(), TextTopSong(), PayRelationship(),
]
SPLITS = ("train", "dev", "test")


def _build() -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    for index, scenario in enumerate(SCENARIOS):
        for variant in range(VARIANTS_PER_SCENARIO):
            seed = 1000 * (index + 1) + variant
            world = make_world(seed)
            params = scenario.params(world, random.Random(seed * 7 + 1))
            assert params is not None
            task_id = f"{scenario.id}_{variant + 1}"
            tasks[task_id] = Task(task_id, scenario.id, scenario.split, seed, scenario.instruction(params), params,
                                  scenario.reference(params), _checker(scenario, params))
    return tasks


def _checker(scenario: Scenario, params: dict[str, Any]) -> Callable[[dict, dict, Any], list[Check]]:
    from environments.apps.world import diff_state

    def run(before: dict[str, Any], after: dict[str, Any], answer: Any) -> list[Check]:
        return scenario.checks(params, before, after, diff_state(before, after), answer)

    return run


TASKS: dict[str, Task] = _build()


def task_ids(split: str) -> list[str]:
    """Task ids of a split (train, dev, test); all variants of a scenario share its split."""
    if split not in SPLITS:
        raise ValueError(f"unknown apps split {split!r}; choose one of {list(SPLITS)}")
    return [t.task_id for t in TASKS.values() if t.split == split]


def get_task(task_id: str) -> Task:
    """A task by id (KeyError naming the known ids' pattern otherwise)."""
    if task_id not in TASKS:
        raise KeyError(f"unknown apps task {task_id!r}; see `skillkit env apps tasks`")
    return TASKS[task_id]


def scenario_goal_completion(results: dict[str, bool]) -> float:
    """SGC: the fraction of scenarios (among those with results) whose every variant succeeded."""
    by_scenario: dict[str, list[bool]] = {}
    for task_id, ok in results.items():
        by_scenario.setdefault(get_task(task_id).scenario_id, []).append(ok)
    return sum(all(v) for v in by_scenario.values()) / len(by_scenario) if by_scenario else 0.0


def task_goal_completion(results: dict[str, bool]) -> float:
    """TGC: the fraction of tasks whose every check passed."""
    return sum(results.values()) / len(results) if results else 0.0
