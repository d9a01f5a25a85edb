"""The calendar app: events you organise, invitations from others, attendees, reminders and free slots."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from environments.apps.framework import ApiError, App, api, paginate, require_email, require_text

DAYS = [f"2024-06-{d:02d}" for d in (3, 4, 5, 6, 7, 10, 11, 12, 13, 14)]
TITLES = ["Team sync", "Dentist", "Lunch", "Project review", "Yoga", "1:1", "Planning", "Coffee chat", "Demo",
          "Budget meeting", "Book club", "Haircut"]
LOCATIONS = ["Room 4", "Cafe Central", "Online", "Main office", "Gym", "Library"]
WORK_HOURS = (9, 17)  # free slots are searched between these hours
RESPONSES = ("accepted", "declined", "pending")


def _parse(value: Any, field: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ApiError(f"{field} must look like 2024-06-03T09:30, got {value!r}") from None


def generate(rng: random.Random, me: dict[str, Any], contacts: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Calendar tables for one world: non-overlapping events over two work weeks, a third of them invitations."""
    people = list(contacts.values())
    events: dict[int, dict[str, Any]] = {}
    for day in DAYS:
        hour = 8 + rng.randrange(0, 3)
        while True:
            hour += rng.randrange(1, 4)
            length = rng.choice((1, 1, 2))
            if hour + length > 18:
                break
            i = len(events) + 1
            invited = rng.random() < 0.35
            organizer = rng.choice(people)["email"] if invited else me["email"]
            attendees = sorted({organizer, me["email"], *(p["email"] for p in rng.sample(people, rng.randrange(0, 4)))})
            events[i] = {"id": i, "title": rng.choice(TITLES), "start": f"{day}T{hour:02d}:00",
                         "end": f"{day}T{hour + length:02d}:00", "location": rng.choice(LOCATIONS),
                         "organizer": organizer, "attendees": attendees,
                         "my_response": rng.choice(RESPONSES) if invited else "accepted",
                         "reminder_minutes": rng.choice((None, None, 10, 30))}
            hour += length
    return {"events": events}


class CalendarApp(App):
    """A calendar: your events and invitations, attendees, reminders and free-time search."""

    name = "calendar"
    description = ("Calendar: list and show events, create, reschedule or delete your events, manage attendees and "
                   "reminders, answer invitations and find free slots.")

    def _event(self, event_id: int) -> dict[str, Any]:
        return self.find("events", event_id, "event")

    def _own(self, event_id: int) -> dict[str, Any]:
        event = self._event(event_id)
        if event["organizer"] != self.me():
            raise ApiError(f"event {event_id} is organised by {event['organizer']}; you can only answer its invitation")
        return event

    def _invitation(self, event_id: int) -> dict[str, Any]:
        event = self._event(event_id)
        if event["organizer"] == self.me():
            raise ApiError(f"event {event_id} is your own event, not an invitation")
        return event

    @api("List events (yours and invitations) ordered by start time; summaries without attendees.",
         start_date="first day (YYYY-MM-DD) to include, None for no limit",
         end_date="last day (YYYY-MM-DD) to include, None for no limit", query="substring of the title",
         page_index="page number from 0", page_limit="per page (1-20)")
    def show_events(self, access_token: str, start_date: str | None = None, end_date: str | None = None,
                    query: str = "", page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        q = str(query).lower()
        rows = [{k: e[k] for k in ("id", "title", "start", "end", "organizer", "my_response")}
                for e in sorted(self.tables["events"].values(), key=lambda e: (e["start"], e["id"]))
                if (start_date is None or e["start"][:10] >= str(start_date))
                and (end_date is None or e["start"][:10] <= str(end_date)) and q in e["title"].lower()]
        return paginate(rows, page_index, page_limit)

    @api("Show one event with location, attendees and reminder.", event_id="the event's id")
    def show_event(self, access_token: str, event_id: int) -> dict[str, Any]:
        return self._event(event_id)

    @api("Create an event you organise (you are an attendee).", title="the title",
         start="start time, e.g. 2024-06-03T09:00", end="end time, after start", location="where",
         attendees="list of attendee emails (besides you)")
    def create_event(self, access_token: str, title: str, start: str, end: str, location: str = "",
                     attendees: list[str] | None = None) -> dict[str, Any]:
        if _parse(end, "end") <= _parse(start, "start"):
            raise ApiError("end must be after start")
        others = [require_email(a, "each attendee") for a in attendees or []]
        event_id = self.next_id("events")
        self.tables["events"][event_id] = {
            "id": event_id, "title": require_text(title, "title"), "start": start, "end": end, "location": location,
            "organizer": self.me(), "attendees": sorted({self.me(), *others}), "my_response": "accepted",
            "reminder_minutes": None}
        return {"message": "event created", "event_id": event_id}

    @api("Change the title, time or location of an event you organise (only the given fields).",
         event_id="the event's id", title="new title", start="new start time", end="new end time",
         location="new location")
    def update_event(self, access_token: str, event_id: int, title: str | None = None, start: str | None = None,
                     end: str | None = None, location: str | None = None) -> dict[str, Any]:
        event = self._own(event_id)
        new_start, new_end = start or event["start"], end or event["end"]
        if _parse(new_end, "end") <= _parse(new_start, "start"):
            raise ApiError("end must be after start")
        updates = {"title": title, "start": start, "end": end, "location": location}
        event.update({k: v for k, v in updates.items() if v is not None})
        return {"message": "event updated"}

    @api("Delete an event you organise (decline invitations instead).", event_id="the event's id")
    def delete_event(self, access_token: str, event_id: int) -> dict[str, Any]:
        self._own(event_id)
        del self.tables["events"][event_id]
        return {"message": "event deleted"}

    @api("Add an attendee to an event you organise.", event_id="the event's id", email="the attendee's email")
    def add_attendee(self, access_token: str, event_id: int, email: str) -> dict[str, Any]:
        event = self._own(event_id)
        if require_email(email) in event["attendees"]:
            raise ApiError(f"{email} already attends event {event_id}")
        event["attendees"] = sorted([*event["attendees"], email])
        return {"message": "attendee added"}

    @api("Remove an attendee from an event you organise.", event_id="the event's id", email="the attendee's email")
    def remove_attendee(self, access_token: str, event_id: int, email: str) -> dict[str, Any]:
        event = self._own(event_id)
        if email == self.me():
            raise ApiError("you organise this event; delete it instead of removing yourself")
        if email not in event["attendees"]:
            raise ApiError(f"{email} does not attend event {event_id}")
        event["attendees"] = [a for a in event["attendees"] if a != email]
        return {"message": "attendee removed"}

    @api("List invitations (events organised by others) by your response, ordered by start time.",
         status="'pending', 'accepted', 'declined' or None (all)", page_index="page number from 0",
         page_limit="per page (1-20)")
    def show_invitations(self, access_token: str, status: str | None = "pending", page_index: int = 0,
                         page_limit: int = 5) -> list[dict[str, Any]]:
        if status not in (None, *RESPONSES):
            raise ApiError("status must be 'pending', 'accepted', 'declined' or None")
        rows = [e for e in sorted(self.tables["events"].values(), key=lambda e: (e["start"], e["id"]))
                if e["organizer"] != self.me() and (status is None or e["my_response"] == status)]
        return paginate(rows, page_index, page_limit)

    @api("Accept an invitation.", event_id="the event's id")
    def accept_invitation(self, access_token: str, event_id: int) -> dict[str, Any]:
        self._invitation(event_id)["my_response"] = "accepted"
        return {"message": "invitation accepted"}

    @api("Decline an invitation.", event_id="the event's id")
    def decline_invitation(self, access_token: str, event_id: int) -> dict[str, Any]:
        self._invitation(event_id)["my_response"] = "declined"
        return {"message": "invitation declined"}

    @api("Set (or clear with None) the reminder of an event.", event_id="the event's id",
         minutes_before="minutes before the start (1-1440), or None for no reminder")
    def set_reminder(self, access_token: str, event_id: int, minutes_before: int | None) -> dict[str, Any]:
        event = self._event(event_id)
        if minutes_before is not None and (not isinstance(minutes_before, int) or not 1 <= minutes_before <= 1440):
            raise ApiError("minutes_before must be an integer from 1 to 1440, or None")
        event["reminder_minutes"] = minutes_before
        return {"message": "reminder set" if minutes_before else "reminder cleared"}

    @api("Free start times on a day (on the hour, 09:00-17:00 work hours) that clash with no event you have not "
         "declined.", date="the day, YYYY-MM-DD", duration_minutes="how long the slot must be (multiple of 60)")
    def find_free_slots(self, access_token: str, date: str, duration_minutes: int = 60) -> list[str]:
        if not isinstance(duration_minutes, int) or duration_minutes <= 0 or duration_minutes % 60:
            raise ApiError("duration_minutes must be a positive multiple of 60")
        _parse(f"{date}T00:00", "date")
        busy = [(e["start"], e["end"]) for e in self.tables["events"].values()
                if e["start"][:10] == date and e["my_response"] != "declined"]
        hours = duration_minutes // 60
        slots = []
        for hour in range(WORK_HOURS[0], WORK_HOURS[1] - hours + 1):
            start, end = f"{date}T{hour:02d}:00", f"{date}T{hour + hours:02d}:00"
            if all(end <= b_start or start >= b_end for b_start, b_end in busy):
                slots.append(start)
        return slots
