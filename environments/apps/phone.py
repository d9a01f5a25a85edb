"""The phone app: contacts and text messages."""

from __future__ import annotations

from typing import Any

from environments.apps.framework import ApiError, App, api, exchanged, paginate


class PhoneApp(App):
    """Contacts (with relationships) and text messages of the supervisor's phone."""

    name = "phone"
    description = "Phone: manage contacts (search, add, update, delete) and send, read or delete text messages."
    login_field = "phone_number"

    @api("Search contacts by name, phone or email substring and/or relationship (ordered by id).", query="substring to match (empty matches all)",
         relationship="only contacts having this relationship tag (e.g. 'friend')",
         page_index="page number from 0", page_limit="results per page (1-20)")
    def search_contacts(self, access_token: str, query: str = "", relationship: str | None = None,
                        page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        q = str(query).lower()
        rows = [c for _, c in sorted(self.tables["contacts"].items())
                if q in f"{c['first_name']} {c['last_name']} {c['phone_number']} {c['email']}".lower()
                and (relationship is None or relationship in c["relationships"])]
        return paginate(rows, page_index, page_limit)

    @api("Show one contact.", contact_id="the contact's id")
    def show_contact(self, access_token: str, contact_id: int) -> dict[str, Any]:
        return self.find("contacts", contact_id, "contact")

    @api("Add a contact; the phone number must be new.", first_name="first name", last_name="last name",
         phone_number="phone number (digits)", email="email address", relationships="list of tags")
    def add_contact(self, access_token: str, first_name: str, last_name: str, phone_number: str,
                    email: str = "", relationships: list[str] | None = None) -> dict[str, Any]:
        if not str(first_name).strip() or not str(phone_number).strip():
            raise ApiError("first_name and phone_number must not be empty")
        if any(c["phone_number"] == phone_number for c in self.tables["contacts"].values()):
            raise ApiError(f"a contact with phone number {phone_number} already exists")
        contact_id = self.next_id("contacts")
        self.tables["contacts"][contact_id] = {
            "id": contact_id, "first_name": first_name, "last_name": last_name, "phone_number": phone_number,
            "email": email, "relationships": list(relationships or []),
        }
        return {"message": "contact added", "contact_id": contact_id}

    @api("Update fields of a contact (only the given ones).", contact_id="the contact's id",
         first_name="new first name", last_name="new last name", phone_number="new phone number",
         email="new email", relationships="new list of tags (replaces the old list)")
    def update_contact(self, access_token: str, contact_id: int, first_name: str | None = None,
                       last_name: str | None = None, phone_number: str | None = None, email: str | None = None,
                       relationships: list[str] | None = None) -> dict[str, Any]:
        contact = self.find("contacts", contact_id, "contact")
        updates = {"first_name": first_name, "last_name": last_name, "phone_number": phone_number,
                   "email": email, "relationships": relationships}
        contact.update({k: v for k, v in updates.items() if v is not None})
        return {"message": "contact updated"}

    @api("Delete a contact.", contact_id="the contact's id")
    def delete_contact(self, access_token: str, contact_id: int) -> dict[str, Any]:
        self.delete("contacts", contact_id, "contact")
        return {"message": "contact deleted"}

    @api("Show text messages, newest first, optionally only those exchanged with one phone number.",
         phone_number="the other party's phone number (None: all)",
         direction="'sent', 'received' or 'all'", page_index="page number from 0", page_limit="per page (1-20)")
    def show_text_messages(self, access_token: str, phone_number: str | None = None, direction: str = "all",
                           page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        rows = exchanged(self.tables["messages"].values(), self.me(), direction, phone_number, "sender", "receiver",
                         "sent_at")
        return paginate(rows, page_index, page_limit)

    @api("Send a text message.", phone_number="the receiver's phone number", message="the text")
    def send_text_message(self, access_token: str, phone_number: str, message: str) -> dict[str, Any]:
        if not str(message).strip():
            raise ApiError("message must not be empty")
        msg_id = self.next_id("messages")
        self.tables["messages"][msg_id] = {"id": msg_id, "sender": self.me(), "receiver": phone_number,
                                           "text": message, "sent_at": self.now()}
        return {"message": "text message sent", "text_message_id": msg_id}

    @api("Delete a text message.", message_id="the text message's id")
    def delete_text_message(self, access_token: str, message_id: int) -> dict[str, Any]:
        self.delete("messages", message_id, "text message")
        return {"message": "text message deleted"}
