"""Scenarios that reconcile two or three apps (email, wallet, notes, calendar, phone, music, shopping)."""

from __future__ import annotations

from environments.apps.scenarios.base import (
    WALLET_PAY,
    Check,
    Scenario,
    balance_check,
    contact,
    emailed_lines,
    full,
    money,
    rows,
    same_ids,
    updated_to,
)
from environments.apps.scenarios.original import FIND, FIND_PLAYLIST
from environments.apps.scenarios.productivity import FIND_EVENT, FIND_LIST, FIND_NOTE, own_event, todo_list
from environments.apps.scenarios.shopping import ORDER_FROM_CART, ordered_one_each, other_cart_kept


class PayEmailedAsks(Scenario):
    id, split, difficulty, apps = "cross_pay_email_asks", "train", 3, ("email", "wallet")
    pattern = "reconcile"
    changes = WALLET_PAY | {("email", "emails", "added")}

    def params(self, world, rng):
        asks = [e for _, e in sorted(world["email"]["emails"].items())
                if e["folder"] == "inbox" and e["subject"].startswith("Money for ")]
        return {"pay": sorted((e["sender"], money(e["body"])) for e in asks), "ids": [e["id"] for e in asks]} if asks else None

    def instruction(self, p):
        return ("Some people emailed me asking for money (inbox emails whose subject starts with 'Money for '). Pay each "
                "of them the amount they asked with my wallet, with the email's subject as the note, and reply 'Sent!' "
                "to each of those emails.")

    def solution(self, p):
        return '''import re
for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox", query="Money for "):
    if not mail["subject"].startswith("Money for "):
        continue
    body = apis.email.show_email(access_token=tokens["email"], email_id=mail["id"])["body"]
    amount = float(re.search(r"\\$(\\d+(?:\\.\\d+)?)", body).group(1))
    apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=mail["sender"], amount=amount, description=mail["subject"])
    apis.email.reply_to_email(access_token=tokens["email"], email_id=mail["id"], body="Sent!")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        paid = sorted((t["receiver_email"], t["amount"]) for t in rows(diff, "wallet", "transactions", "added"))
        replies = sorted(e.get("reply_to") for e in rows(diff, "email", "emails", "added") if e["body"] == "Sent!")
        return [Check("each asker paid the asked amount", paid == p["pay"], f"paid {paid}"),
                balance_check(before, after, sum(a for _, a in p["pay"])),
                same_ids("a reply to each ask", replies, p["ids"])]


class TodosFromEmails(Scenario):
    id, split, difficulty, apps = "cross_todos_from_emails", "train", 3, ("email", "notes")
    pattern = "reconcile"
    changes = frozenset({("notes", "todos", "added"), ("email", "emails", "updated")})

    def params(self, world, rng):
        tasks = [e for _, e in sorted(world["email"]["emails"].items()) if e["folder"] == "inbox" and not e["read"]
                 and e["subject"].startswith("Task: ")]
        lst, lid = todo_list(world, rng)
        return {"list": lst, "list_id": lid, "texts": sorted(e["subject"][6:] for e in tasks),
                "ids": [e["id"] for e in tasks]} if tasks else None

    def instruction(self, p):
        return (f"For every unread inbox email whose subject starts with 'Task: ', add a todo with the rest of the "
                f"subject as its text to my todo list '{p['list']}', then mark the email as read.")

    def solution(self, p):
        return FIND_LIST.format(title=p["list"]) + '''
for mail in all_pages(apis.email.search_emails, access_token=tokens["email"], folder="inbox", unread_only=True):
    if mail["subject"].startswith("Task: "):
        apis.notes.add_todo(access_token=tokens["notes"], list_id=lst["id"], text=mail["subject"][len("Task: "):])
        apis.email.mark_email_read(access_token=tokens["email"], email_id=mail["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        todos = rows(diff, "notes", "todos", "added")
        ok = sorted(t["text"] for t in todos) == p["texts"] and all(t["list_id"] == p["list_id"] for t in todos)
        return [Check("one todo per task email in the list", ok, f"added: {todos}"),
                *updated_to(diff, after, "email", "emails", p["ids"], "those emails marked read",
                            "read", True, "read")]


class EmailAttendees(Scenario):
    id, split, difficulty, apps = "cross_email_attendees", "dev", 3, ("calendar", "email")
    pattern = "reconcile"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        e = own_event(world, rng, lambda e: len(e["attendees"]) > 1)
        if e is None:
            return None
        return {"title": e["title"], "to": sorted(a for a in e["attendees"] if a != world["supervisor"]["email"])}

    def instruction(self, p):
        return (f"Email all the other attendees of my calendar event '{p['title']}' in one email with the subject "
                f"'{p['title']}: agenda' and the body 'Agenda to follow.'")

    def solution(self, p):
        return FIND_EVENT.format(title=p["title"]) + f'''
attendees = apis.calendar.show_event(access_token=tokens["calendar"], event_id=event["id"])["attendees"]
apis.email.send_email(access_token=tokens["email"], recipients=[a for a in attendees if a != profile["email"]],
                      subject={p["title"] + ": agenda"!r}, body="Agenda to follow.")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "email", "emails", "added")
        ok = len(added) == 1 and sorted(added[0]["recipients"]) == p["to"] and \
            added[0]["subject"] == f"{p['title']}: agenda"
        return [Check("one email to exactly the other attendees", ok, f"added: {added}")]


class EmailPlaylist(Scenario):
    id, split, difficulty, apps = "cross_email_playlist", "test_normal", 3, ("phone", "music", "email")
    pattern = "reconcile"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        pl = rng.choice(sorted(world["music"]["playlists"].values(), key=lambda x: x["id"]))
        c = contact(world, rng)
        return {"playlist": pl["title"], "name": full(c), "email": c["email"],
                "titles": [world["music"]["songs"][s]["title"] for s in pl["song_ids"]]}

    def instruction(self, p):
        return (f"Email my contact {p['name']} the song titles of my playlist '{p['playlist']}', one per line in "
                f"playlist order, with the subject '{p['playlist']}'.")

    def solution(self, p):
        return FIND.format(name=p["name"]) + "\n" + FIND_PLAYLIST.format(title=p["playlist"]) + f'''
ids = apis.music.show_playlist(access_token=tokens["music"], playlist_id=pl["id"])["song_ids"]
body = "\\n".join(apis.music.show_song(song_id=i)["title"] for i in ids)
apis.email.send_email(access_token=tokens["email"], recipients=[who["email"]], subject={p["playlist"]!r}, body=body)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [emailed_lines(diff, p["email"], p["playlist"], p["titles"], "one email listing the titles in order")]


class TextAttendees(Scenario):
    id, split, difficulty, apps = "cross_text_attendees", "test_normal", 3, ("phone", "calendar")
    pattern = "reconcile"
    changes = frozenset({("phone", "messages", "added")})

    def params(self, world, rng):
        phones = {c["email"]: c["phone_number"] for c in world["phone"]["contacts"].values()}
        e = own_event(world, rng, lambda e: any(a in phones for a in e["attendees"]))
        if e is None:
            return None
        return {"title": e["title"], "phones": sorted(phones[a] for a in e["attendees"] if a in phones),
                "text": rng.choice(["Running 10 minutes late.", "Starting soon!"])}

    def instruction(self, p):
        return (f"Text '{p['text']}' to every attendee of my calendar event '{p['title']}' who is in my phone "
                "contacts (match them by email).")

    def solution(self, p):
        return FIND_EVENT.format(title=p["title"]) + f'''
attendees = apis.calendar.show_event(access_token=tokens["calendar"], event_id=event["id"])["attendees"]
for who in all_pages(apis.phone.search_contacts, access_token=tokens["phone"]):
    if who["email"] in attendees:
        apis.phone.send_text_message(access_token=tokens["phone"], phone_number=who["phone_number"], message={p["text"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "phone", "messages", "added")
        ok = sorted(m["receiver"] for m in added) == p["phones"] and all(m["text"] == p["text"] for m in added)
        return [Check("one text to each attendee in the contacts", ok, f"added: {added}")]


class PayIous(Scenario):
    id, split, difficulty, apps = "cross_pay_ious", "test_normal", 3, ("notes", "phone", "wallet")
    pattern = "reconcile"
    changes = WALLET_PAY

    def params(self, world, rng):
        body = next(n["body"] for n in world["notes"]["notes"].values() if n["title"] == "IOUs")
        names = {full(c): c["email"] for c in world["phone"]["contacts"].values()}
        me = world["supervisor"]["email"]
        pay = []
        for line in body.splitlines():
            name, amount = line.split(": $")
            email = names[name]
            already = any(t["receiver_email"] == email and t["sender_email"] == me and t["description"] == "IOU"
                          for t in world["wallet"]["transactions"].values())
            if not already:
                pay.append((email, float(amount)))
        return {"pay": sorted(pay)}

    def instruction(self, p):
        return ("My note 'IOUs' lists what I owe people ('Name: $amount' per line). Pay each of them with my wallet "
                "with the note 'IOU', skipping anyone I already paid with the note 'IOU'.")

    def solution(self, p):
        return FIND_NOTE.format(title="IOUs") + '''
body = apis.notes.show_note(access_token=tokens["notes"], note_id=note["id"])["body"]
sent = all_pages(apis.wallet.show_transactions, access_token=tokens["wallet"], direction="sent")
for line in body.splitlines():
    name, amount = line.split(": $")
    who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query=name)[0]
    if not any(t["receiver_email"] == who["email"] and t["description"] == "IOU" for t in sent):
        apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=who["email"], amount=float(amount), description="IOU")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "wallet", "transactions", "added")
        paid = sorted((t["receiver_email"], t["amount"]) for t in added)
        return [Check("each IOU paid once", paid == p["pay"] and all(t["description"] == "IOU" for t in added),
                      f"paid {paid}"),
                balance_check(before, after, sum(a for _, a in p["pay"]))]


class BuyShoppingList(Scenario):
    id, split, difficulty, apps = "cross_buy_shopping_list", "test_normal", 3, ("notes", "shopping")
    pattern = "reconcile"
    changes = ORDER_FROM_CART

    def params(self, world, rng):
        body = next(n["body"] for n in world["notes"]["notes"].values() if n["title"] == "Shopping list")
        ids = {p["name"]: p["id"] for p in world["shopping"]["products"].values()}
        wanted = sorted(ids[line[2:]] for line in body.splitlines())
        return {"ids": wanted, "cart": sorted(world["shopping"]["cart"])}

    def instruction(self, p):
        return ("Buy exactly one of each product on my note 'Shopping list' (one line per product name) in one order; "
                "leave everything else in my cart.")

    def solution(self, p):
        return FIND_NOTE.format(title="Shopping list") + '''
body = apis.notes.show_note(access_token=tokens["notes"], note_id=note["id"])["body"]
cart = {i["product_id"] for i in apis.shopping.show_cart(access_token=tokens["shopping"])["items"]}
chosen = []
for line in body.splitlines():
    name = line.lstrip("- ").strip()
    product = [x for x in all_pages(apis.shopping.search_products, query=name) if x["name"] == name][0]
    if product["id"] in cart:
        apis.shopping.update_cart_item(access_token=tokens["shopping"], product_id=product["id"], quantity=1)
    else:
        apis.shopping.add_to_cart(access_token=tokens["shopping"], product_id=product["id"])
    chosen.append(product["id"])
apis.shopping.place_order(access_token=tokens["shopping"], product_ids=chosen)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [ordered_one_each(diff, p["ids"], "one order with one of each listed product"),
                other_cart_kept(after, p["cart"], p["ids"])]



SCENARIOS = [PayEmailedAsks(), TodosFromEmails(), EmailAttendees(), EmailPlaylist(), TextAttendees(), PayIous(),
             BuyShoppingList()]
