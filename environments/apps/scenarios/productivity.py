"""Scenarios on the email, calendar and notes apps (alone or with the phone for people)."""

from __future__ import annotations

import random
from collections.abc import Callable

from environments.apps.scenarios.base import (
    Check,
    Question,
    Scenario,
    added_one,
    by_email,
    contact,
    field_is,
    full,
    inbox,
    newest,
    removed_ids,
    rows,
    same_ids,
    updated_ids,
    updated_to,
)
from environments.apps.scenarios.original import FIND

EMAIL_UPDATED = frozenset({("email", "emails", "updated")})
EVENTS_UPDATED = frozenset({("calendar", "events", "updated")})
NOTES_UPDATED = frozenset({("notes", "notes", "updated")})
TODOS_UPDATED = frozenset({("notes", "todos", "updated")})


# -- email -------------------------------------------------------------------------------------------
class EmailContact(Scenario):
    id, split, difficulty, apps = "email_send_contact", "train", 2, ("phone", "email")
    pattern = "find-person"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "email": c["email"], "subject": rng.choice(["Saturday", "The report", "Hello"]),
                "body": rng.choice(["See you at noon.", "The report is attached to my next mail.", "Call me later."])}

    def instruction(self, p):
        return f"Email my contact {p['name']} with the subject '{p['subject']}' and the body '{p['body']}'."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
apis.email.send_email(access_token=tokens["email"], recipients=[who["email"]], subject={p["subject"]!r}, body={p["body"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"recipients": [p["email"]], "subject": p["subject"], "body": p["body"], "folder": "sent"}
        return [added_one(diff, "email", "emails", want, "one email to the contact")]


class CountUnread(Question):
    id, split, difficulty, apps = "email_count_unread", "train", 1, ("email",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        return {"count": len(inbox(world, read=False))}

    def instruction(self, p):
        return "How many unread emails are in my email inbox? Answer with a number."

    def solution(self, p):
        return '''unread = all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox", unread_only=True)
apis.supervisor.complete_task(answer=len(unread))'''


class ReplyLatest(Scenario):
    id, split, difficulty, apps = "email_reply_latest", "train", 2, ("phone", "email")
    pattern = "find-person"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        senders = sorted({e["sender"] for e in inbox(world)} & set(by_email(world)))
        c = by_email(world)[rng.choice(senders)]
        latest = newest(inbox(world, sender=c["email"]))
        return {"name": full(c), "email": c["email"], "subject": latest["subject"],
                "body": rng.choice(["Thanks, noted!", "Yes, that works for me.", "Let's discuss on Monday."])}

    def instruction(self, p):
        return f"Reply '{p['body']}' to the most recent email in my inbox from {p['name']}."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
latest = apis.email.search_emails(access_token=tokens["email"], folder="inbox", sender=who["email"], page_limit=1)[0]
apis.email.reply_to_email(access_token=tokens["email"], email_id=latest["id"], body={p["body"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        subject = p["subject"] if p["subject"].startswith("Re: ") else f"Re: {p['subject']}"
        want = {"recipients": [p["email"]], "subject": subject, "body": p["body"]}
        return [added_one(diff, "email", "emails", want, "one reply to that email")]


class FolderFromSender(Scenario):
    id, split, difficulty, apps = "email_folder_from_sender", "train", 2, ("phone", "email")
    pattern = "find-person"
    changes = frozenset({("email", "folders", "added"), ("email", "emails", "updated")})

    def params(self, world, rng):
        c = by_email(world)[rng.choice(sorted({e["sender"] for e in inbox(world)} & set(by_email(world))))]
        return {"name": full(c), "folder": c["first_name"], "ids": sorted(e["id"] for e in inbox(world, sender=c["email"]))}

    def instruction(self, p):
        return f"Create an email folder named '{p['folder']}' and move every inbox email from {p['name']} into it."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
apis.email.create_folder(access_token=tokens["email"], name={p["folder"]!r})
for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox", sender=who["email"]):
    apis.email.move_email(access_token=tokens["email"], email_id=mail["id"], folder={p["folder"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "email", "folders", {"name": p["folder"]}, "the folder created"),
                *updated_to(diff, after, "email", "emails", p["ids"], "exactly those emails moved",
                            "folder", p["folder"], "emails in the new folder")]


class ReadFromSender(Scenario):
    id, split, difficulty, apps = "email_read_sender", "train", 2, ("phone", "email")
    pattern = "find-person"
    changes = EMAIL_UPDATED

    def params(self, world, rng):
        unread = inbox(world, read=False)
        senders = sorted({e["sender"] for e in unread} & set(by_email(world)))
        c = by_email(world)[rng.choice(senders)]
        return {"name": full(c), "ids": sorted(e["id"] for e in unread if e["sender"] == c["email"])}

    def instruction(self, p):
        return f"Mark every unread email in my inbox from {p['name']} as read."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], sender=who["email"], unread_only=True):
    apis.email.mark_email_read(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "email", "emails", p["ids"], "exactly those emails changed",
                          "read", True, "marked read")


class DropReceiptsFolder(Scenario):
    id, split, difficulty, apps = "email_drop_folder", "train", 2, ("email",)
    pattern = "edit-all"
    changes = frozenset({("email", "folders", "removed"), ("email", "emails", "updated")})

    def params(self, world, rng):
        target = rng.choice(["archive", "inbox"])
        ids = sorted(e["id"] for e in world["email"]["emails"].values() if e["folder"] == "Receipts")
        return {"target": target, "ids": ids}

    def instruction(self, p):
        return f"Move every email in my 'Receipts' email folder to '{p['target']}', then delete the 'Receipts' folder."

    def solution(self, p):
        return f'''for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="Receipts"):
    apis.email.move_email(access_token=tokens["email"], email_id=mail["id"], folder={p["target"]!r})
apis.email.delete_folder(access_token=tokens["email"], name="Receipts")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        gone = [f["name"] for f in rows(diff, "email", "folders", "removed")]
        return [Check("the Receipts folder deleted", gone == ["Receipts"], f"removed {gone}"),
                *updated_to(diff, after, "email", "emails", p["ids"], "exactly its emails moved",
                            "folder", p["target"], "emails in the target folder")]


class UnstarAll(Scenario):
    id, split, difficulty, apps = "email_unstar_all", "dev", 1, ("email",)
    pattern = "edit-all"
    changes = EMAIL_UPDATED

    def params(self, world, rng):
        ids = sorted(e["id"] for e in world["email"]["emails"].values() if e["starred"])
        return {"ids": ids} if ids else None

    def instruction(self, p):
        return "Remove the star from every starred email, in every folder."

    def solution(self, p):
        return '''for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder=None, starred_only=True):
    apis.email.unstar_email(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "email", "emails", p["ids"], "exactly the starred emails changed",
                          "starred", False, "stars removed")


class ForwardSubject(Scenario):
    id, split, difficulty, apps = "email_forward", "test_normal", 2, ("phone", "email")
    pattern = "find-person"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        mails = inbox(world)
        unique = [e for e in mails if sum(o["subject"] == e["subject"] for o in mails) == 1]
        if not unique:
            return None
        mail = rng.choice(sorted(unique, key=lambda e: e["id"]))
        c = contact(world, rng, lambda c: c["email"] != mail["sender"])
        return {"subject": mail["subject"], "body": mail["body"], "name": full(c), "email": c["email"]}

    def instruction(self, p):
        return f"Forward the email in my inbox with the subject '{p['subject']}' to my contact {p['name']}."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
mail = [m for m in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox")
        if m["subject"] == {p["subject"]!r}][0]
apis.email.forward_email(access_token=tokens["email"], email_id=mail["id"], recipients=[who["email"]])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "email", "emails", "added")
        ok = len(added) == 1 and added[0]["recipients"] == [p["email"]] and \
            added[0]["subject"] == f"Fwd: {p['subject']}" and p["body"] in added[0]["body"]
        return [Check("the email forwarded to the contact", ok, f"added: {added}")]


class StarRelationship(Scenario):
    id, split, difficulty, apps = "email_star_relationship", "test_normal", 3, ("phone", "email")
    pattern = "reconcile"
    changes = EMAIL_UPDATED

    def params(self, world, rng):
        rel = rng.choice(["friend", "family", "coworker"])
        emails = {c["email"] for c in world["phone"]["contacts"].values() if rel in c["relationships"]}
        ids = sorted(e["id"] for e in inbox(world, starred=False) if e["sender"] in emails)
        return {"rel": rel, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Star every unstarred email in my inbox sent by a phone contact with the relationship '{p['rel']}'."

    def solution(self, p):
        return f'''emails = {{c["email"] for c in all_pages(apis.phone.search_contacts, access_token=tokens["phone"], relationship={p["rel"]!r})}}
for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox"):
    if mail["sender"] in emails and not mail["starred"]:
        apis.email.star_email(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "email", "emails", p["ids"], "exactly those emails changed",
                          "starred", True, "starred")


class EmptyTrash(Scenario):
    id, split, difficulty, apps = "email_empty_trash", "test_normal", 1, ("email",)
    pattern = "edit-all"
    changes = frozenset({("email", "emails", "removed")})

    def params(self, world, rng):
        ids = sorted(e["id"] for e in world["email"]["emails"].values() if e["folder"] == "trash")
        return {"ids": ids} if ids else None

    def instruction(self, p):
        return "Permanently delete every email in my email trash folder."

    def solution(self, p):
        return '''for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="trash"):
    apis.email.delete_email(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly the trash deleted", removed_ids(diff, "email", "emails"), p["ids"])]


class LatestBody(Question):
    id, split, difficulty, apps = "email_latest_body", "test_normal", 1, ("email",)
    pattern = "lookup"
    expected = "body"

    def params(self, world, rng):
        latest = newest(inbox(world))
        return {"body": latest["body"]}

    def instruction(self, p):
        return "What does the newest email in my inbox say? Answer with its body text exactly."

    def solution(self, p):
        return '''newest = apis.email.search_emails(access_token=tokens["email"], folder="inbox", page_limit=1)[0]
apis.supervisor.complete_task(answer=apis.email.show_email(access_token=tokens["email"], email_id=newest["id"])["body"])'''


class MarkUnread(Scenario):
    id, split, difficulty, apps = "email_mark_unread", "test_normal", 1, ("phone", "email")
    pattern = "find-person"
    changes = EMAIL_UPDATED

    def params(self, world, rng):
        senders = sorted(s for s in {e["sender"] for e in inbox(world)} & set(by_email(world))
                         if newest(inbox(world, sender=s))["read"])
        if not senders:
            return None
        c = by_email(world)[rng.choice(senders)]
        return {"name": full(c), "id": newest(inbox(world, sender=c["email"]))["id"]}

    def instruction(self, p):
        return f"Mark the newest email in my inbox from {p['name']} as unread so I remember it."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
mail = apis.email.search_emails(access_token=tokens["email"], folder="inbox", sender=who["email"], page_limit=1)[0]
apis.email.mark_email_unread(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "email", "emails", [p["id"]], "only that email changed",
                          "read", False, "marked unread")


class CountFolder(Question):
    id, split, difficulty, apps = "email_count_folder", "test_normal", 1, ("email",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        folder = rng.choice(["sent", "archive", "trash", "inbox"])
        return {"folder": folder, "count": sum(e["folder"] == folder for e in world["email"]["emails"].values())}

    def instruction(self, p):
        return f"How many emails are in my '{p['folder']}' email folder? Answer with a number."

    def solution(self, p):
        return f'''folders = apis.email.show_folders(access_token=tokens["email"])
apis.supervisor.complete_task(answer=[f for f in folders if f["name"] == {p["folder"]!r}][0]["num_emails"])'''


# -- calendar ----------------------------------------------------------------------------------------
def _events(world: dict, **where) -> list[dict]:
    return sorted((e for e in world["calendar"]["events"].values() if all(e[k] == v for k, v in where.items())),
                  key=lambda e: (e["start"], e["id"]))


def _own(world: dict) -> list[dict]:
    return _events(world, organizer=world["supervisor"]["email"])


def own_event(world: dict, rng: random.Random, pred: Callable[[dict], bool] = lambda e: True) -> dict | None:
    """A random event I organise whose title no other of my events has, satisfying ``pred`` (None if none)."""
    own = _own(world)
    options = [e for e in own if sum(o["title"] == e["title"] for o in own) == 1 and pred(e)]
    return rng.choice(options) if options else None


FIND_EVENT = '''event = [e for e in all_pages(apis.calendar.show_events, access_token=tokens["calendar"], query={title!r})
         if e["organizer"] == profile["email"]][0]'''


class CreateEvent(Scenario):
    id, split, difficulty, apps = "calendar_create_event", "train", 1, ("calendar",)
    pattern = "create"
    changes = frozenset({("calendar", "events", "added")})

    def params(self, world, rng):
        day, hour = rng.choice(["2024-06-17", "2024-06-18", "2024-06-19"]), rng.randrange(9, 17)
        return {"title": rng.choice(["Piano lesson", "Car service", "Tax advisor"]), "start": f"{day}T{hour:02d}:00",
                "end": f"{day}T{hour + 1:02d}:00", "location": rng.choice(["Town hall", "Garage", "Online"])}

    def instruction(self, p):
        return (f"Add an event '{p['title']}' to my calendar from {p['start']} to {p['end']} at {p['location']}, "
                "with no other attendees.")

    def solution(self, p):
        return f'''apis.calendar.create_event(access_token=tokens["calendar"], title={p["title"]!r}, start={p["start"]!r},
                            end={p["end"]!r}, location={p["location"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"title": p["title"], "start": p["start"], "end": p["end"], "location": p["location"]}
        added = rows(diff, "calendar", "events", "added")
        return [added_one(diff, "calendar", "events", want, "the event created"),
                Check("no other attendees", bool(added) and len(added[0]["attendees"]) == 1, f"added: {added}")]


class CountDay(Question):
    id, split, difficulty, apps = "calendar_count_day", "train", 1, ("calendar",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        day = rng.choice(sorted({e["start"][:10] for e in world["calendar"]["events"].values()}))
        return {"day": day, "count": sum(e["start"][:10] == day and e["my_response"] != "declined"
                                         for e in world["calendar"]["events"].values())}

    def instruction(self, p):
        return f"How many events on {p['day']} are on my calendar, not counting invitations I declined? Answer with a number."

    def solution(self, p):
        return f'''events = all_pages(apis.calendar.show_events, access_token=tokens["calendar"], start_date={p["day"]!r}, end_date={p["day"]!r})
apis.supervisor.complete_task(answer=sum(e["my_response"] != "declined" for e in events))'''


class AcceptFrom(Scenario):
    id, split, difficulty, apps = "calendar_accept_from", "train", 2, ("phone", "calendar")
    pattern = "find-person"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        pending = _events(world, my_response="pending")
        organizers = sorted({e["organizer"] for e in pending})
        if not organizers:
            return None
        c = by_email(world)[rng.choice(organizers)]
        return {"name": full(c), "ids": [e["id"] for e in pending if e["organizer"] == c["email"]]}

    def instruction(self, p):
        return f"Accept every pending calendar invitation from {p['name']}; leave the other invitations as they are."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for inv in all_pages(apis.calendar.show_invitations, access_token=tokens["calendar"], status="pending"):
    if inv["organizer"] == who["email"]:
        apis.calendar.accept_invitation(access_token=tokens["calendar"], event_id=inv["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "calendar", "events", p["ids"], "exactly those invitations changed",
                          "my_response", "accepted", "accepted")


class Reschedule(Scenario):
    id, split, difficulty, apps = "calendar_reschedule", "train", 2, ("calendar",)
    pattern = "edit-one"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        e = own_event(world, rng)
        if e is None:
            return None
        day = rng.choice(["2024-06-20", "2024-06-21"])
        return {"title": e["title"], "id": e["id"], "start": f"{day}{e['start'][10:]}", "end": f"{day}{e['end'][10:]}"}

    def instruction(self, p):
        return f"Move my calendar event '{p['title']}' to {p['start'][:10]}, keeping its time of day and length."

    def solution(self, p):
        return FIND_EVENT.format(title=p["title"]) + f'''
apis.calendar.update_event(access_token=tokens["calendar"], event_id=event["id"], start={p["start"][:10]!r} + event["start"][10:],
                           end={p["start"][:10]!r} + event["end"][10:])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        event = after["calendar"]["events"].get(p["id"], {})
        ok = event.get("start") == p["start"] and event.get("end") == p["end"]
        return [same_ids("only that event changed", updated_ids(diff, "calendar", "events"), [p["id"]]),
                Check("moved to the new day", ok, f"now {event.get('start')} - {event.get('end')}")]


class RemindersOnDay(Scenario):
    id, split, difficulty, apps = "calendar_reminders_day", "train", 2, ("calendar",)
    pattern = "edit-all"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        minutes = rng.choice((15, 45, 60))
        days = sorted({e["start"][:10] for e in world["calendar"]["events"].values()})
        day = rng.choice(days)
        ids = [e["id"] for e in _events(world) if e["start"][:10] == day and e["my_response"] == "accepted"
               and e["reminder_minutes"] != minutes]
        return {"day": day, "minutes": minutes, "ids": ids} if ids else None

    def instruction(self, p):
        return (f"Set a {p['minutes']}-minute reminder on every event on {p['day']} that I have accepted "
                "(my own events count as accepted).")

    def solution(self, p):
        return f'''for e in all_pages(apis.calendar.show_events, access_token=tokens["calendar"], start_date={p["day"]!r}, end_date={p["day"]!r}):
    if e["my_response"] == "accepted":
        apis.calendar.set_reminder(access_token=tokens["calendar"], event_id=e["id"], minutes_before={p["minutes"]})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "calendar", "events", p["ids"], "exactly those events changed",
                          "reminder_minutes", p["minutes"], "reminders set")


class RemoveAttendee(Scenario):
    id, split, difficulty, apps = "calendar_remove_attendee", "train", 2, ("phone", "calendar")
    pattern = "find-person"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        me = world["supervisor"]["email"]
        guests = sorted({a for e in _own(world) for a in e["attendees"] if a != me} & set(by_email(world)))
        if not guests:
            return None
        c = by_email(world)[rng.choice(guests)]
        return {"name": full(c), "email": c["email"], "ids": [e["id"] for e in _own(world) if c["email"] in e["attendees"]]}

    def instruction(self, p):
        return f"Remove {p['name']} from the attendees of every calendar event I organise."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for e in all_pages(apis.calendar.show_events, access_token=tokens["calendar"]):
    if e["organizer"] == profile["email"] and who["email"] in apis.calendar.show_event(access_token=tokens["calendar"], event_id=e["id"])["attendees"]:
        apis.calendar.remove_attendee(access_token=tokens["calendar"], event_id=e["id"], email=who["email"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        still = [i for i in p["ids"] if p["email"] in after["calendar"]["events"][i]["attendees"]]
        return [same_ids("exactly those events changed", updated_ids(diff, "calendar", "events"), p["ids"]),
                Check("the person removed everywhere", not still, f"still in {still}")]


class EventLocation(Question):
    id, split, difficulty, apps = "calendar_event_location", "dev", 1, ("calendar",)
    pattern = "lookup"
    expected = "location"

    def params(self, world, rng):
        e = own_event(world, rng)
        if e is None:
            return None
        return {"title": e["title"], "location": e["location"]}

    def instruction(self, p):
        return f"Where is my calendar event '{p['title']}' held? Answer with the location."

    def solution(self, p):
        return FIND_EVENT.format(title=p["title"]) + '''
apis.supervisor.complete_task(answer=apis.calendar.show_event(access_token=tokens["calendar"], event_id=event["id"])["location"])'''


class InviteContact(Scenario):
    id, split, difficulty, apps = "calendar_invite_contact", "test_normal", 2, ("phone", "calendar")
    pattern = "find-person"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        e = own_event(world, rng)
        if e is None:
            return None
        c = contact(world, rng, lambda c: c["email"] not in e["attendees"])
        return {"title": e["title"], "id": e["id"], "name": full(c), "email": c["email"]}

    def instruction(self, p):
        return f"Invite my contact {p['name']} to my calendar event '{p['title']}'."

    def solution(self, p):
        return FIND.format(name=p["name"]) + "\n" + FIND_EVENT.format(title=p["title"]) + '''
apis.calendar.add_attendee(access_token=tokens["calendar"], event_id=event["id"], email=who["email"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        attendees = after["calendar"]["events"][p["id"]]["attendees"]
        want = sorted({*before["calendar"]["events"][p["id"]]["attendees"], p["email"]})
        return [same_ids("only that event changed", updated_ids(diff, "calendar", "events"), [p["id"]]),
                Check("the contact added as attendee", sorted(attendees) == want, f"attendees {attendees}")]


class CancelDay(Scenario):
    id, split, difficulty, apps = "calendar_cancel_day", "test_normal", 2, ("calendar",)
    pattern = "edit-all"
    changes = frozenset({("calendar", "events", "removed"), ("calendar", "events", "updated")})

    def params(self, world, rng):
        day = rng.choice(sorted({e["start"][:10] for e in _own(world)}))
        events = [e for e in _events(world) if e["start"][:10] == day]
        return {"day": day, "delete": [e["id"] for e in events if e["organizer"] == world["supervisor"]["email"]],
                "decline": [e["id"] for e in events if e["organizer"] != world["supervisor"]["email"]
                            and e["my_response"] != "declined"]}

    def instruction(self, p):
        return (f"I'm off on {p['day']}: delete every event I organise that day and decline every invitation that day "
                "I have not declined yet.")

    def solution(self, p):
        return f'''for e in all_pages(apis.calendar.show_events, access_token=tokens["calendar"], start_date={p["day"]!r}, end_date={p["day"]!r}):
    if e["organizer"] == profile["email"]:
        apis.calendar.delete_event(access_token=tokens["calendar"], event_id=e["id"])
    elif e["my_response"] != "declined":
        apis.calendar.decline_invitation(access_token=tokens["calendar"], event_id=e["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("own events that day deleted", removed_ids(diff, "calendar", "events"), p["delete"]),
                *updated_to(diff, after, "calendar", "events", p["decline"], "invitations that day declined",
                            "my_response", "declined", "declined")]


class MeetInFreeSlot(Scenario):
    id, split, difficulty, apps = "calendar_free_slot_meeting", "test_normal", 3, ("phone", "calendar")
    pattern = "create"
    changes = frozenset({("calendar", "events", "added")})

    def params(self, world, rng):
        day = rng.choice(sorted({e["start"][:10] for e in world["calendar"]["events"].values()}))
        busy = [(e["start"][11:13], e["end"][11:13]) for e in world["calendar"]["events"].values()
                if e["start"][:10] == day and e["my_response"] != "declined"]
        free = [h for h in range(9, 17) if all(f"{h + 1:02d}" <= s or f"{h:02d}" >= e for s, e in busy)]
        if not free:
            return None
        c = contact(world, rng)
        return {"day": day, "start": f"{day}T{free[0]:02d}:00", "end": f"{day}T{free[0] + 1:02d}:00",
                "name": full(c), "email": c["email"], "title": f"Catch-up with {c['first_name']}"}

    def instruction(self, p):
        return (f"Book a one-hour event '{p['title']}' on {p['day']} in my earliest free hour within work hours, with "
                f"my contact {p['name']} as attendee.")

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
start = apis.calendar.find_free_slots(access_token=tokens["calendar"], date={p["day"]!r}, duration_minutes=60)[0]
end = start[:11] + f"{{int(start[11:13]) + 1:02d}}:00"
apis.calendar.create_event(access_token=tokens["calendar"], title={p["title"]!r}, start=start, end=end, attendees=[who["email"]])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"title": p["title"], "start": p["start"], "end": p["end"]}
        added = rows(diff, "calendar", "events", "added")
        return [added_one(diff, "calendar", "events", want, "the event at the earliest free hour"),
                Check("the contact invited", bool(added) and p["email"] in added[0]["attendees"])]


class DeclineClashes(Scenario):
    id, split, difficulty, apps = "calendar_decline_clashes", "test_normal", 3, ("calendar",)
    pattern = "edit-all"
    changes = EVENTS_UPDATED

    def params(self, world, rng):
        own = _own(world)
        pending = _events(world, my_response="pending")
        clash = [e["id"] for e in pending if any(o["start"] < e["end"] and e["start"] < o["end"] for o in own)]
        accept = [e["id"] for e in pending if e["id"] not in clash]
        return {"accept": accept, "decline": clash} if pending else None

    def instruction(self, p):
        return ("Answer all my pending calendar invitations: decline those that overlap an event I organise, accept "
                "the others.")

    def solution(self, p):
        return '''mine = [e for e in all_pages(apis.calendar.show_events, access_token=tokens["calendar"]) if e["organizer"] == profile["email"]]
for inv in all_pages(apis.calendar.show_invitations, access_token=tokens["calendar"], status="pending"):
    if any(o["start"] < inv["end"] and inv["start"] < o["end"] for o in mine):
        apis.calendar.decline_invitation(access_token=tokens["calendar"], event_id=inv["id"])
    else:
        apis.calendar.accept_invitation(access_token=tokens["calendar"], event_id=inv["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [field_is(after, "calendar", "events", p["accept"], "my_response", "accepted", "free ones accepted"),
                field_is(after, "calendar", "events", p["decline"], "my_response", "declined", "clashing ones declined"),
                same_ids("only invitations changed", updated_ids(diff, "calendar", "events"), p["accept"] + p["decline"])]


class FirstEventTitle(Question):
    id, split, difficulty, apps = "calendar_first_event", "test_normal", 1, ("calendar",)
    pattern = "lookup"
    expected = "title"

    def params(self, world, rng):
        day = rng.choice(sorted({e["start"][:10] for e in world["calendar"]["events"].values()}))
        first = [e for e in _events(world) if e["start"][:10] == day and e["my_response"] == "accepted"]
        return {"day": day, "title": first[0]["title"]} if first else None

    def instruction(self, p):
        return f"What is the title of my first accepted event on {p['day']}? Answer with the title."

    def solution(self, p):
        return f'''events = all_pages(apis.calendar.show_events, access_token=tokens["calendar"], start_date={p["day"]!r}, end_date={p["day"]!r})
apis.supervisor.complete_task(answer=[e for e in events if e["my_response"] == "accepted"][0]["title"])'''


# -- notes and todos ----------------------------------------------------------------------------------
def todo_list(world: dict, rng: random.Random) -> tuple[str, int]:
    """The title and id of one of the todo lists Errands, Work and Home, chosen at random."""
    title = rng.choice(["Errands", "Work", "Home"])
    return title, next(i for i, lst in world["notes"]["todo_lists"].items() if lst["title"] == title)


def _todos(world: dict, **where) -> list[dict]:
    return [t for _, t in sorted(world["notes"]["todos"].items()) if all(t[k] == v for k, v in where.items())]


FIND_LIST = '''lst = [x for x in apis.notes.show_todo_lists(access_token=tokens["notes"]) if x["title"] == {title!r}][0]'''
FIND_NOTE = '''note = [n for n in all_pages(apis.notes.search_notes, access_token=tokens["notes"], query={title!r}) if n["title"] == {title!r}][0]'''


class CreateNote(Scenario):
    id, split, difficulty, apps = "notes_create", "train", 1, ("notes",)
    pattern = "create"
    changes = frozenset({("notes", "notes", "added")})

    def params(self, world, rng):
        return {"title": rng.choice(["Wifi password", "Parking spot", "Locker code"]), "body": f"Code {rng.randrange(1000, 9999)}",
                "tag": rng.choice(["personal", "work"])}

    def instruction(self, p):
        return f"Create a note titled '{p['title']}' with the text '{p['body']}' and the tag '{p['tag']}'."

    def solution(self, p):
        return f'''apis.notes.create_note(access_token=tokens["notes"], title={p["title"]!r}, body={p["body"]!r}, tags=[{p["tag"]!r}])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "notes", "notes", {"title": p["title"], "body": p["body"], "tags": [p["tag"]]},
                          "the note created")]


class CountTagged(Question):
    id, split, difficulty, apps = "notes_count_tag", "train", 1, ("notes",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        tag = rng.choice(["work", "personal", "ideas", "travel", "recipes"])
        return {"tag": tag, "count": sum(tag in n["tags"] for n in world["notes"]["notes"].values())}

    def instruction(self, p):
        return f"How many of my notes have the tag '{p['tag']}'? Answer with a number."

    def solution(self, p):
        return f'''apis.supervisor.complete_task(answer=len(all_pages(apis.notes.search_notes, access_token=tokens["notes"], tag={p["tag"]!r})))'''


class AppendLine(Scenario):
    id, split, difficulty, apps = "notes_append_line", "train", 2, ("notes",)
    pattern = "edit-one"
    changes = NOTES_UPDATED

    def params(self, world, rng):
        n = rng.choice([n for n in world["notes"]["notes"].values() if n["title"] not in ("Shopping list", "IOUs")])
        return {"title": n["title"], "id": n["id"], "line": rng.choice(["Check again on Friday.", "Ask Sam.", "Done!"]),
                "body": n["body"]}

    def instruction(self, p):
        return f"Add the line '{p['line']}' at the end of my note '{p['title']}' (keep the existing text above it)."

    def solution(self, p):
        return FIND_NOTE.format(title=p["title"]) + f'''
body = apis.notes.show_note(access_token=tokens["notes"], note_id=note["id"])["body"]
apis.notes.update_note(access_token=tokens["notes"], note_id=note["id"], body=body + "\\n" + {p["line"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        body = after["notes"]["notes"].get(p["id"], {}).get("body", "")
        return [same_ids("only that note changed", updated_ids(diff, "notes", "notes"), [p["id"]]),
                Check("line appended, text kept", body.rstrip() == f"{p['body']}\n{p['line']}", f"body {body!r}")]


class UnpinAll(Scenario):
    id, split, difficulty, apps = "notes_unpin_all", "train", 1, ("notes",)
    pattern = "edit-all"
    changes = NOTES_UPDATED

    def params(self, world, rng):
        return {"ids": sorted(n["id"] for n in world["notes"]["notes"].values() if n["pinned"])}

    def instruction(self, p):
        return "Unpin all my pinned notes."

    def solution(self, p):
        return '''for note in all_pages(apis.notes.search_notes, access_token=tokens["notes"]):
    if note["pinned"]:
        apis.notes.unpin_note(access_token=tokens["notes"], note_id=note["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "notes", "notes", p["ids"], "exactly the pinned notes changed",
                          "pinned", False, "unpinned")


class AddTodo(Scenario):
    id, split, difficulty, apps = "todo_add", "train", 1, ("notes",)
    pattern = "create"
    changes = frozenset({("notes", "todos", "added")})

    def params(self, world, rng):
        lst, lid = todo_list(world, rng)
        return {"list": lst, "list_id": lid, "text": rng.choice(["Buy stamps", "Print tickets", "Call Bob"]),
                "due": f"2024-06-{rng.randrange(10, 28)}", "priority": rng.choice(["high", "low"])}

    def instruction(self, p):
        return f"Add a todo '{p['text']}' due {p['due']} with {p['priority']} priority to my todo list '{p['list']}'."

    def solution(self, p):
        return FIND_LIST.format(title=p["list"]) + f'''
apis.notes.add_todo(access_token=tokens["notes"], list_id=lst["id"], text={p["text"]!r}, due_date={p["due"]!r}, priority={p["priority"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"list_id": p["list_id"], "text": p["text"], "due_date": p["due"], "priority": p["priority"], "done": False}
        return [added_one(diff, "notes", "todos", want, "the todo added")]


class CountOpenTodos(Question):
    id, split, difficulty, apps = "todo_count_open", "train", 1, ("notes",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        priority = rng.choice([None, "high", "normal"])
        return {"priority": priority, "count": sum(not t["done"] and priority in (None, t["priority"])
                                                   for t in world["notes"]["todos"].values())}

    def instruction(self, p):
        which = f"{p['priority']}-priority " if p["priority"] else ""
        return f"How many open {which}todos do I have across all my todo lists? Answer with a number."

    def solution(self, p):
        return f'''todos = all_pages(apis.notes.show_todos, access_token=tokens["notes"], status="open")
apis.supervisor.complete_task(answer=sum({p["priority"]!r} in (None, t["priority"]) for t in todos))'''


class DeleteList(Scenario):
    id, split, difficulty, apps = "todo_delete_list", "train", 1, ("notes",)
    pattern = "edit-one"
    changes = frozenset({("notes", "todo_lists", "removed"), ("notes", "todos", "removed")})

    def params(self, world, rng):
        lst, lid = todo_list(world, rng)
        return {"list": lst, "list_id": lid, "todos": [t["id"] for t in _todos(world, list_id=lid)]}

    def instruction(self, p):
        return f"Delete my todo list '{p['list']}' together with its todos."

    def solution(self, p):
        return FIND_LIST.format(title=p["list"]) + '''
apis.notes.delete_todo_list(access_token=tokens["notes"], list_id=lst["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("the list deleted", removed_ids(diff, "notes", "todo_lists"), [p["list_id"]]),
                same_ids("its todos deleted", removed_ids(diff, "notes", "todos"), p["todos"])]


class Reprioritize(Scenario):
    id, split, difficulty, apps = "todo_reprioritize", "train", 2, ("notes",)
    pattern = "edit-all"
    changes = TODOS_UPDATED

    def params(self, world, rng):
        day = f"2024-06-{rng.randrange(6, 16):02d}"
        ids = [t["id"] for t in _todos(world, done=False) if t["due_date"] and t["due_date"] <= day and t["priority"] != "high"]
        return {"day": day, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Set the priority of every open todo due on or before {p['day']} to high."

    def solution(self, p):
        return f'''for t in all_pages(apis.notes.show_todos, access_token=tokens["notes"], status="open"):
    if t["due_date"] and t["due_date"] <= {p["day"]!r} and t["priority"] != "high":
        apis.notes.update_todo(access_token=tokens["notes"], todo_id=t["id"], priority="high")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "notes", "todos", p["ids"], "exactly those todos changed",
                          "priority", "high", "priority high")


class DeleteTaggedNotes(Scenario):
    id, split, difficulty, apps = "notes_delete_tag", "test_normal", 2, ("notes",)
    pattern = "edit-all"
    changes = frozenset({("notes", "notes", "removed")})

    def params(self, world, rng):
        tag = rng.choice(["ideas", "travel", "recipes", "work"])
        ids = sorted(n["id"] for n in world["notes"]["notes"].values() if tag in n["tags"])
        return {"tag": tag, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Delete every note that has the tag '{p['tag']}'."

    def solution(self, p):
        return f'''for note in all_pages(apis.notes.search_notes, access_token=tokens["notes"], tag={p["tag"]!r}):
    apis.notes.delete_note(access_token=tokens["notes"], note_id=note["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly the tagged notes deleted", removed_ids(diff, "notes", "notes"), p["ids"])]


class PinNote(Scenario):
    id, split, difficulty, apps = "notes_pin", "test_normal", 1, ("notes",)
    pattern = "edit-one"
    changes = NOTES_UPDATED

    def params(self, world, rng):
        options = [n for n in world["notes"]["notes"].values() if not n["pinned"]]
        n = rng.choice(sorted(options, key=lambda n: n["id"]))
        return {"title": n["title"], "id": n["id"]}

    def instruction(self, p):
        return f"Pin my note '{p['title']}'."

    def solution(self, p):
        return FIND_NOTE.format(title=p["title"]) + '''
apis.notes.pin_note(access_token=tokens["notes"], note_id=note["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "notes", "notes", [p["id"]], "only that note changed",
                          "pinned", True, "pinned")


class DoneOverdue(Scenario):
    id, split, difficulty, apps = "todo_done_overdue", "test_normal", 2, ("notes",)
    pattern = "edit-all"
    changes = TODOS_UPDATED

    def params(self, world, rng):
        lst, lid = todo_list(world, rng)
        day = f"2024-06-{rng.randrange(8, 18):02d}"
        ids = [t["id"] for t in _todos(world, list_id=lid, done=False) if t["due_date"] and t["due_date"] < day]
        return {"list": lst, "day": day, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Mark as done every open todo in my list '{p['list']}' that is due before {p['day']}."

    def solution(self, p):
        return FIND_LIST.format(title=p["list"]) + f'''
for t in all_pages(apis.notes.show_todos, access_token=tokens["notes"], list_id=lst["id"], status="open"):
    if t["due_date"] and t["due_date"] < {p["day"]!r}:
        apis.notes.mark_todo_done(access_token=tokens["notes"], todo_id=t["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "notes", "todos", p["ids"], "exactly those todos changed",
                          "done", True, "marked done")


class ListWithItems(Scenario):
    id, split, difficulty, apps = "todo_new_list", "test_normal", 2, ("notes",)
    pattern = "create"
    changes = frozenset({("notes", "todo_lists", "added"), ("notes", "todos", "added")})

    def params(self, world, rng):
        return {"title": rng.choice(["Moving day", "Camping", "Birthday party"]),
                "items": rng.sample(["Rent a van", "Pack boxes", "Buy snacks", "Charge lamps", "Invite friends"], 3)}

    def instruction(self, p):
        items = ", ".join(f"'{i}'" for i in p["items"])
        return f"Create a todo list '{p['title']}' with the todos {items} (normal priority, no due date)."

    def solution(self, p):
        return f'''lid = apis.notes.create_todo_list(access_token=tokens["notes"], title={p["title"]!r})["list_id"]
for text in {p["items"]!r}:
    apis.notes.add_todo(access_token=tokens["notes"], list_id=lid, text=text)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        lists = rows(diff, "notes", "todo_lists", "added")
        todos = rows(diff, "notes", "todos", "added")
        ok = len(lists) == 1 and lists[0]["title"] == p["title"] and sorted(t["text"] for t in todos) == sorted(p["items"]) \
            and all(t["list_id"] == lists[0]["id"] and t["priority"] == "normal" and t["due_date"] is None for t in todos)
        return [Check("the list with exactly those todos", ok, f"lists {lists}, todos {todos}")]


class Reopen(Scenario):
    id, split, difficulty, apps = "todo_reopen", "test_normal", 1, ("notes",)
    pattern = "edit-one"
    changes = TODOS_UPDATED

    def params(self, world, rng):
        done = _todos(world, done=True)
        if not done:
            return None
        t = rng.choice(done)
        return {"text": t["text"], "id": t["id"]}

    def instruction(self, p):
        return f"I marked the todo '{p['text']}' as done by mistake; make it open again."

    def solution(self, p):
        return f'''todo = [t for t in all_pages(apis.notes.show_todos, access_token=tokens["notes"], status="done") if t["text"] == {p["text"]!r}][0]
apis.notes.mark_todo_open(access_token=tokens["notes"], todo_id=todo["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "notes", "todos", [p["id"]], "only that todo changed",
                          "done", False, "open again")


class DeleteDone(Scenario):
    id, split, difficulty, apps = "todo_delete_done", "test_normal", 2, ("notes",)
    pattern = "edit-all"
    changes = frozenset({("notes", "todos", "removed")})

    def params(self, world, rng):
        lst, lid = todo_list(world, rng)
        ids = [t["id"] for t in _todos(world, list_id=lid, done=True)]
        return {"list": lst, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Clean up my todo list '{p['list']}': delete the todos that are done."

    def solution(self, p):
        return FIND_LIST.format(title=p["list"]) + '''
for t in all_pages(apis.notes.show_todos, access_token=tokens["notes"], list_id=lst["id"], status="done"):
    apis.notes.delete_todo(access_token=tokens["notes"], todo_id=t["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly the done todos deleted", removed_ids(diff, "notes", "todos"), p["ids"])]


SCENARIOS = [EmailContact(), CountUnread(), ReplyLatest(), FolderFromSender(), ReadFromSender(), DropReceiptsFolder(),
             UnstarAll(), ForwardSubject(), StarRelationship(), EmptyTrash(), LatestBody(), MarkUnread(), CountFolder(),
             CreateEvent(), CountDay(), AcceptFrom(), Reschedule(), RemindersOnDay(), RemoveAttendee(), EventLocation(),
             InviteContact(), CancelDay(), MeetInFreeSlot(), DeclineClashes(), FirstEventTitle(),
             CreateNote(), CountTagged(), AppendLine(), UnpinAll(), AddTodo(), CountOpenTodos(), DeleteList(),
             Reprioritize(), DeleteTaggedNotes(), PinNote(), DoneOverdue(), ListWithItems(), Reopen(), DeleteDone()]
