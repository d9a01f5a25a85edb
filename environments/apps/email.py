"""The email app: folders, reading, sending, replying, forwarding, starring and deleting emails."""

from __future__ import annotations

import random
from typing import Any

from environments.apps.framework import (
    ApiError,
    FolderApp,
    api,
    paginate,
    require_email,
    require_text,
    switch,
)

BUILTIN_FOLDERS = ("inbox", "sent", "archive", "trash")
SUBJECTS = ["Project update", "Trip plans", "Dinner on Saturday", "Book club", "Meeting notes", "Quick question",
            "Photos from the weekend", "Weekly Newsletter", "Invoice reminder", "Garden party", "Newsletter: June deals",
            "Re: the report"]
BODIES = ["Let me know what you think.", "See the details below.", "Can we talk tomorrow?", "Thanks a lot!",
          "Looking forward to it.", "Here is what I found."]
TASK_TEXTS = ["Book the venue", "Send the slides", "Renew the passport", "Call the plumber", "Buy a birthday card",
              "Water the plants", "Fix the bike", "Pay the electricity bill", "Return the library books"]


def generate(rng: random.Random, me: dict[str, Any], contacts: dict[int, dict[str, Any]], stamp) -> dict[str, Any]:
    """Email tables for one world: received, sent and archived emails, money asks and task emails."""
    people = list(contacts.values())
    emails: dict[int, dict[str, Any]] = {}

    def add(sender: str, recipients: list[str], subject: str, body: str, folder: str) -> None:
        i = len(emails) + 1
        emails[i] = {"id": i, "sender": sender, "recipients": recipients, "subject": subject, "body": body,
                     "folder": folder, "read": folder != "inbox" or rng.random() < 0.5,
                     "starred": rng.random() < 0.2, "sent_at": stamp()}

    notes = ["concert tickets", "the cabin", "pizza night", "the gift", "train tickets", "the museum"]
    askers = rng.sample(people, 3)
    for _ in range(36):
        other = rng.choice(people)
        roll = rng.random()
        if roll < 0.55:
            add(other["email"], [me["email"]], rng.choice(SUBJECTS), rng.choice(BODIES), "inbox")
        elif roll < 0.8:
            add(me["email"], [other["email"]], rng.choice(SUBJECTS), rng.choice(BODIES), "sent")
        elif roll < 0.9:
            add(other["email"], [me["email"]], rng.choice(SUBJECTS), rng.choice(BODIES), "archive")
        else:
            add(other["email"], [me["email"]], rng.choice(SUBJECTS), rng.choice(BODIES), "trash")
        if len(emails) in (6, 17, 28):
            who = askers[len(emails) // 11]
            note, amount = rng.choice(notes), rng.randrange(8, 60)
            add(who["email"], [me["email"]], f"Money for {note}", f"Hi! Could you send me ${amount} for {note}? Thanks.",
                "inbox")
        if len(emails) in (10, 22):
            add(rng.choice(people)["email"], [me["email"]], f"Task: {rng.choice(TASK_TEXTS)}",
                "Please add this to your list.", "inbox")
    for row in emails.values():
        if row["subject"].startswith("Task: "):
            row["read"] = False
    folders = {i: {"id": i, "name": name} for i, name in enumerate(BUILTIN_FOLDERS + ("Receipts",), start=1)}
    for row in rng.sample(sorted(emails), 3):
        if emails[row]["folder"] == "archive":
            emails[row]["folder"] = "Receipts"
    return {"emails": emails, "folders": folders}


class EmailApp(FolderApp):
    """An email account: folders, reading, sending, replying, forwarding, starring and deleting."""

    name = "email"
    description = ("Email: search and read emails by folder, send, reply and forward, mark read/unread, star, move "
                   "between folders and delete.")

    def _email(self, email_id: int) -> dict[str, Any]:
        return self.find("emails", email_id, "email")

    def _summary(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k != "body"}

    def _new(self, recipients: list[str], subject: str, body: str, reply_to: int | None = None) -> int:
        email_id = self.next_id("emails")
        self.tables["emails"][email_id] = {
            "id": email_id, "sender": self.me(), "recipients": recipients, "subject": subject, "body": body,
            "folder": "sent", "read": True, "starred": False, "sent_at": self.now(),
            **({"reply_to": reply_to} if reply_to is not None else {}),
        }
        return email_id

    @api("Search emails, newest first (results have no body: use show_email).",
         folder="folder name ('inbox', 'sent', 'archive', 'trash' or your own), None for all folders",
         query="substring of the subject (case-insensitive)", sender="only emails from this address",
         unread_only="only unread emails", starred_only="only starred emails", page_index="page number from 0",
         page_limit="per page (1-20)")
    def search_emails(self, access_token: str, folder: str | None = "inbox", query: str = "", sender: str | None = None,
                      unread_only: bool = False, starred_only: bool = False, page_index: int = 0,
                      page_limit: int = 5) -> list[dict[str, Any]]:
        if folder is not None:
            self._folder(folder)
        q = str(query).lower()
        rows = [self._summary(e) for e in sorted(self.tables["emails"].values(), key=lambda e: (e["sent_at"], e["id"]),
                                                 reverse=True)
                if (folder is None or e["folder"] == folder) and q in e["subject"].lower()
                and (sender is None or e["sender"] == sender) and (not unread_only or not e["read"])
                and (not starred_only or e["starred"])]
        return paginate(rows, page_index, page_limit)

    @api("Show one email with its body (does not change its read state).", email_id="the email's id")
    def show_email(self, access_token: str, email_id: int) -> dict[str, Any]:
        return self._email(email_id)

    @api("Send an email.", recipients="list of email addresses", subject="the subject", body="the text")
    def send_email(self, access_token: str, recipients: list[str], subject: str, body: str) -> dict[str, Any]:
        if not isinstance(recipients, list) or not recipients:
            raise ApiError("recipients must be a non-empty list of email addresses")
        recipients = [require_email(r, "each recipient") for r in recipients]
        email_id = self._new(recipients, require_text(subject, "subject"), require_text(body, "body"))
        return {"message": "email sent", "email_id": email_id}

    @api("Reply to an email's sender; the subject becomes 'Re: <subject>'.", email_id="the email to answer",
         body="the reply text")
    def reply_to_email(self, access_token: str, email_id: int, body: str) -> dict[str, Any]:
        original = self._email(email_id)
        if original["sender"] == self.me():
            raise ApiError("you cannot reply to your own email; use send_email")
        subject = original["subject"] if original["subject"].startswith("Re: ") else f"Re: {original['subject']}"
        new_id = self._new([original["sender"]], subject, require_text(body, "body"), reply_to=email_id)
        return {"message": "reply sent", "email_id": new_id}

    @api("Forward an email (its subject becomes 'Fwd: <subject>', its body is kept).", email_id="the email",
         recipients="list of email addresses", note="optional text put above the forwarded body")
    def forward_email(self, access_token: str, email_id: int, recipients: list[str], note: str = "") -> dict[str, Any]:
        original = self._email(email_id)
        if not isinstance(recipients, list) or not recipients:
            raise ApiError("recipients must be a non-empty list of email addresses")
        body = (f"{note}\n\n" if note else "") + f"---------- Forwarded ----------\n{original['body']}"
        new_id = self._new([require_email(r, "each recipient") for r in recipients], f"Fwd: {original['subject']}", body)
        return {"message": "email forwarded", "email_id": new_id}

    @api("Mark an email as read.", email_id="the email's id")
    def mark_email_read(self, access_token: str, email_id: int) -> dict[str, Any]:
        self._email(email_id)["read"] = True
        return {"message": "marked as read"}

    @api("Mark an email as unread.", email_id="the email's id")
    def mark_email_unread(self, access_token: str, email_id: int) -> dict[str, Any]:
        self._email(email_id)["read"] = False
        return {"message": "marked as unread"}

    @api("Star an email.", email_id="the email's id")
    def star_email(self, access_token: str, email_id: int) -> dict[str, Any]:
        switch(self._email(email_id), "starred", True, f"email {email_id} is already starred")
        return {"message": "email starred"}

    @api("Remove the star from an email.", email_id="the email's id")
    def unstar_email(self, access_token: str, email_id: int) -> dict[str, Any]:
        switch(self._email(email_id), "starred", False, f"email {email_id} is not starred")
        return {"message": "star removed"}

    @api("Move an email to another folder.", email_id="the email's id", folder="the target folder's name")
    def move_email(self, access_token: str, email_id: int, folder: str) -> dict[str, Any]:
        row = self._email(email_id)
        if folder not in self._folder_names():
            raise ApiError(f"no folder {folder!r}; create it with create_folder first")
        row["folder"] = folder
        return {"message": f"moved to {folder}"}

    @api("Delete an email for good (it does not go to the trash).", email_id="the email's id")
    def delete_email(self, access_token: str, email_id: int) -> dict[str, Any]:
        self.delete("emails", email_id, "email")
        return {"message": "email deleted"}

    @api("List the folders with how many emails (and unread emails) each holds.")
    def show_folders(self, access_token: str) -> list[dict[str, Any]]:
        emails = self.tables["emails"].values()
        return [{"name": name, "num_emails": sum(e["folder"] == name for e in emails),
                 "num_unread": sum(e["folder"] == name and not e["read"] for e in emails)}
                for name in self._folder_names()]

    @api("Delete one of your own folders; it must be empty.", name="the folder name")
    def delete_folder(self, access_token: str, name: str) -> dict[str, Any]:
        if name in BUILTIN_FOLDERS:
            raise ApiError(f"the built-in folder {name!r} cannot be deleted")
        matches = [i for i, f in self.tables["folders"].items() if f["name"] == name]
        if not matches:
            raise ApiError(f"no folder {name!r}")
        if any(e["folder"] == name for e in self.tables["emails"].values()):
            raise ApiError(f"folder {name!r} is not empty; move or delete its emails first")
        del self.tables["folders"][matches[0]]
        return {"message": "folder deleted"}
