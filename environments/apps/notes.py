"""The notes app: notes with tags and pins, and todo lists with due dates and priorities."""

from __future__ import annotations

import random
from typing import Any

from environments.apps.framework import ApiError, App, api, paginate, require_text, switch

TAGS = ["work", "personal", "ideas", "travel", "recipes"]
NOTE_TITLES = ["Gift ideas", "Pasta recipe", "Packing list", "Book list", "Meeting notes", "Garden plan",
               "Movie list", "Quotes", "Budget 2024", "Workout plan", "Conference notes", "Party plan", "Trip budget",
               "Podcast ideas"]
LIST_TITLES = ["Errands", "Work", "Home"]
TODO_TEXTS = ["Buy milk", "Call mom", "Clean the garage", "Send the invoice", "Book flights", "Update the CV",
              "Renew insurance", "Fix the door", "Plan the sprint", "Write the report", "Pick up laundry",
              "Order printer ink", "Email the landlord", "Cancel the gym", "Sort the photos"]
PRIORITIES = ("low", "normal", "high")


def generate(rng: random.Random, shopping_list: list[str], people: list[str], stamp) -> dict[str, Any]:
    """Notes tables: tagged notes (one 'Shopping list' and one 'IOUs' note among them) and todo lists."""
    notes = {}
    for i, title in enumerate(rng.sample(NOTE_TITLES, 10), start=1):
        notes[i] = {"id": i, "title": title, "body": f"{title}: first draft.", "tags": sorted(rng.sample(TAGS, rng.randrange(1, 3))),
                    "pinned": rng.random() < 0.3, "updated_at": stamp()}
    notes[11] = {"id": 11, "title": "Shopping list", "body": "\n".join(f"- {name}" for name in shopping_list),
                 "tags": ["personal"], "pinned": False, "updated_at": stamp()}
    notes[12] = {"id": 12, "title": "IOUs", "body": "\n".join(people), "tags": ["personal"], "pinned": True,
                 "updated_at": stamp()}
    lists = {i: {"id": i, "title": t} for i, t in enumerate(LIST_TITLES, start=1)}
    todos = {}
    for i, text in enumerate(rng.sample(TODO_TEXTS, 14), start=1):
        todos[i] = {"id": i, "list_id": rng.randrange(1, len(lists) + 1), "text": text, "done": rng.random() < 0.35,
                    "due_date": rng.choice([None, *(f"2024-06-{d:02d}" for d in range(2, 20))]),
                    "priority": rng.choice(PRIORITIES)}
    return {"notes": notes, "todo_lists": lists, "todos": todos}


class NotesApp(App):
    """Notes (tagged, pinnable) and todo lists."""

    name = "notes"
    description = "Notes: search, create, edit, tag, pin and delete notes; manage todo lists and their todos."

    def _note(self, note_id: int) -> dict[str, Any]:
        return self.find("notes", note_id, "note")

    def _todo(self, todo_id: int) -> dict[str, Any]:
        return self.find("todos", todo_id, "todo")

    @staticmethod
    def _tags(tags: Any) -> list[str]:
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise ApiError("tags must be a list of non-empty strings")
        return sorted(set(tags))

    @staticmethod
    def _due(due_date: Any) -> Any:
        if due_date is not None and (not isinstance(due_date, str) or len(due_date) != 10 or due_date[4] != "-"):
            raise ApiError(f"due_date must look like 2024-06-15 or be None, got {due_date!r}")
        return due_date

    @api("Search notes (pinned first, then by id); results have no body: use show_note.",
         query="substring of the title (case-insensitive)", tag="only notes with this tag",
         page_index="page number from 0", page_limit="per page (1-20)")
    def search_notes(self, access_token: str, query: str = "", tag: str | None = None, page_index: int = 0,
                     page_limit: int = 5) -> list[dict[str, Any]]:
        q = str(query).lower()
        rows = [{k: v for k, v in n.items() if k != "body"}
                for n in sorted(self.tables["notes"].values(), key=lambda n: (not n["pinned"], n["id"]))
                if q in n["title"].lower() and (tag is None or tag in n["tags"])]
        return paginate(rows, page_index, page_limit)

    @api("Show a note with its body.", note_id="the note's id")
    def show_note(self, access_token: str, note_id: int) -> dict[str, Any]:
        return self._note(note_id)

    @api("Create a note.", title="the title", body="the text", tags="list of tags")
    def create_note(self, access_token: str, title: str, body: str = "", tags: list[str] | None = None) -> dict[str, Any]:
        note_id = self.next_id("notes")
        self.tables["notes"][note_id] = {"id": note_id, "title": require_text(title, "title"), "body": str(body),
                                         "tags": self._tags(tags or []), "pinned": False, "updated_at": self.now()}
        return {"message": "note created", "note_id": note_id}

    @api("Change a note's title, body or tags (only the given fields; tags replace the old list).",
         note_id="the note's id", title="new title", body="new text (replaces the old body)", tags="new list of tags")
    def update_note(self, access_token: str, note_id: int, title: str | None = None, body: str | None = None,
                    tags: list[str] | None = None) -> dict[str, Any]:
        note = self._note(note_id)
        if title is not None:
            note["title"] = require_text(title, "title")
        if body is not None:
            note["body"] = str(body)
        if tags is not None:
            note["tags"] = self._tags(tags)
        note["updated_at"] = self.now()
        return {"message": "note updated"}

    @api("Delete a note.", note_id="the note's id")
    def delete_note(self, access_token: str, note_id: int) -> dict[str, Any]:
        self.delete("notes", note_id, "note")
        return {"message": "note deleted"}

    @api("Pin a note (pinned notes are listed first).", note_id="the note's id")
    def pin_note(self, access_token: str, note_id: int) -> dict[str, Any]:
        self._note(note_id)["pinned"] = True
        return {"message": "note pinned"}

    @api("Unpin a note.", note_id="the note's id")
    def unpin_note(self, access_token: str, note_id: int) -> dict[str, Any]:
        self._note(note_id)["pinned"] = False
        return {"message": "note unpinned"}

    @api("List the todo lists with how many open todos each has.")
    def show_todo_lists(self, access_token: str) -> list[dict[str, Any]]:
        todos = self.tables["todos"].values()
        return [{**lst, "num_open": sum(t["list_id"] == lid and not t["done"] for t in todos)}
                for lid, lst in sorted(self.tables["todo_lists"].items())]

    @api("Create a todo list; titles must be unique.", title="the list title")
    def create_todo_list(self, access_token: str, title: str) -> dict[str, Any]:
        if any(lst["title"] == require_text(title, "title") for lst in self.tables["todo_lists"].values()):
            raise ApiError(f"a todo list titled {title!r} already exists")
        list_id = self.next_id("todo_lists")
        self.tables["todo_lists"][list_id] = {"id": list_id, "title": title}
        return {"message": "todo list created", "list_id": list_id}

    @api("Delete a todo list and all its todos.", list_id="the list's id")
    def delete_todo_list(self, access_token: str, list_id: int) -> dict[str, Any]:
        self.delete("todo_lists", list_id, "todo list")
        for todo_id in [i for i, t in self.tables["todos"].items() if t["list_id"] == list_id]:
            del self.tables["todos"][todo_id]
        return {"message": "todo list deleted"}

    @api("List todos by id.", list_id="only this list's todos (None: all lists)", status="'open', 'done' or 'all'",
         page_index="page number from 0", page_limit="per page (1-20)")
    def show_todos(self, access_token: str, list_id: int | None = None, status: str = "open", page_index: int = 0,
                   page_limit: int = 5) -> list[dict[str, Any]]:
        if status not in ("open", "done", "all"):
            raise ApiError("status must be 'open', 'done' or 'all'")
        if list_id is not None:
            self.find("todo_lists", list_id, "todo list")
        rows = [t for _, t in sorted(self.tables["todos"].items())
                if (list_id is None or t["list_id"] == list_id)
                and (status == "all" or t["done"] == (status == "done"))]
        return paginate(rows, page_index, page_limit)

    @api("Add a todo to a list.", list_id="the list's id", text="what to do", due_date="YYYY-MM-DD or None",
         priority="'low', 'normal' or 'high'")
    def add_todo(self, access_token: str, list_id: int, text: str, due_date: str | None = None,
                 priority: str = "normal") -> dict[str, Any]:
        self.find("todo_lists", list_id, "todo list")
        if priority not in PRIORITIES:
            raise ApiError("priority must be 'low', 'normal' or 'high'")
        todo_id = self.next_id("todos")
        self.tables["todos"][todo_id] = {"id": todo_id, "list_id": list_id, "text": require_text(text, "text"),
                                         "done": False, "due_date": self._due(due_date), "priority": priority}
        return {"message": "todo added", "todo_id": todo_id}

    @api("Change a todo's text, due date or priority (only the given fields).", todo_id="the todo's id",
         text="new text", due_date="new due date (YYYY-MM-DD)", priority="'low', 'normal' or 'high'")
    def update_todo(self, access_token: str, todo_id: int, text: str | None = None, due_date: str | None = None,
                    priority: str | None = None) -> dict[str, Any]:
        todo = self._todo(todo_id)
        if priority is not None and priority not in PRIORITIES:
            raise ApiError("priority must be 'low', 'normal' or 'high'")
        updates = {"text": None if text is None else require_text(text, "text"), "due_date": self._due(due_date),
                   "priority": priority}
        todo.update({k: v for k, v in updates.items() if v is not None})
        return {"message": "todo updated"}

    @api("Mark a todo as done.", todo_id="the todo's id")
    def mark_todo_done(self, access_token: str, todo_id: int) -> dict[str, Any]:
        switch(self._todo(todo_id), "done", True, f"todo {todo_id} is already done")
        return {"message": "todo done"}

    @api("Mark a done todo as open again.", todo_id="the todo's id")
    def mark_todo_open(self, access_token: str, todo_id: int) -> dict[str, Any]:
        switch(self._todo(todo_id), "done", False, f"todo {todo_id} is already open")
        return {"message": "todo reopened"}

    @api("Delete a todo.", todo_id="the todo's id")
    def delete_todo(self, access_token: str, todo_id: int) -> dict[str, Any]:
        self.delete("todos", todo_id, "todo")
        return {"message": "todo deleted"}
