"""Scenarios on the three original apps: phone, wallet and music."""

from __future__ import annotations

from environments.apps.scenarios.base import (
    WALLET_PAY,
    Check,
    Question,
    Scenario,
    added_one,
    balance_check,
    by_email,
    contact,
    full,
    removed_ids,
    rows,
    same_ids,
    updated_ids,
)
from environments.apps.world import FIRST, LAST, PAY_NOTES, RELATIONSHIPS


def _received(world: dict, c: dict) -> list[dict]:
    return [m for m in world["phone"]["messages"].values() if m["sender"] == c["phone_number"]]


def top_liked_title(world: dict) -> str:
    """Title of the liked song with the highest play count."""
    best = max(world["music"]["liked"].values(), key=lambda r: r["my_play_count"])
    return world["music"]["songs"][best["id"]]["title"]


FIND = 'who = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], query={name!r})[0]'
FIND_PLAYLIST = '''pl = [x for x in all_pages(apis.music.show_playlists, access_token=tokens["music"]) if x["title"] == {title!r}][0]'''
TOP_SONG = '''liked = all_pages(apis.music.show_liked_songs, access_token=tokens["music"])
title = max(liked, key=lambda s: s["my_play_count"])["title"]'''


class TextContact(Scenario):
    id, split, difficulty, apps = "phone_text_contact", "train", 1, ("phone",)
    pattern = "find-person"
    changes = frozenset({("phone", "messages", "added")})

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "phone": c["phone_number"], "text": rng.choice(
            ["I'll be there at 7.", "Can we move our call to Monday?", "The keys are under the mat."])}

    def instruction(self, p):
        return f'Send a text message to my contact {p["name"]} saying exactly: {p["text"]}'

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
apis.phone.send_text_message(access_token=tokens["phone"], phone_number=who["phone_number"], message={p["text"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "phone", "messages", {"receiver": p["phone"], "text": p["text"]},
                          "one message to the contact with the text")]


class AddContact(Scenario):
    id, split, difficulty, apps = "phone_add_contact", "train", 1, ("phone",)
    pattern = "create"
    changes = frozenset({("phone", "contacts", "added")})

    def params(self, world, rng):
        taken = {(c["first_name"], c["last_name"]) for c in world["phone"]["contacts"].values()}
        first, last = rng.choice([(f, la) for f in FIRST for la in LAST if (f, la) not in taken])
        return {"first": first, "last": last, "phone": f"777{rng.randrange(10**6, 10**7)}",
                "email": f"{first.lower()}@{last.lower()}.org", "rel": rng.choice(RELATIONSHIPS)}

    def instruction(self, p):
        return (f"Add {p['first']} {p['last']} to my phone contacts with phone number {p['phone']}, email "
                f"{p['email']} and the relationship '{p['rel']}'.")

    def solution(self, p):
        return f'''apis.phone.add_contact(access_token=tokens["phone"], first_name={p["first"]!r}, last_name={p["last"]!r},
                       phone_number={p["phone"]!r}, email={p["email"]!r}, relationships=[{p["rel"]!r}])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"first_name": p["first"], "last_name": p["last"], "phone_number": p["phone"], "email": p["email"],
                "relationships": [p["rel"]]}
        return [added_one(diff, "phone", "contacts", want, "contact added with the right fields")]


class CountRelationship(Question):
    id, split, difficulty, apps = "phone_count_relationship", "train", 1, ("phone",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        rel = rng.choice(RELATIONSHIPS)
        return {"rel": rel, "count": sum(rel in c["relationships"] for c in world["phone"]["contacts"].values())}

    def instruction(self, p):
        return f"How many of my phone contacts have the relationship '{p['rel']}'? Answer with a number."

    def solution(self, p):
        return f'''found = all_pages(apis.phone.search_contacts, access_token=tokens["phone"], relationship={p["rel"]!r})
apis.supervisor.complete_task(answer=len(found))'''


class DeleteReceived(Scenario):
    id, split, difficulty, apps = "phone_delete_received", "dev", 2, ("phone",)
    pattern = "find-person"
    changes = frozenset({("phone", "messages", "removed")})

    def params(self, world, rng):
        c = contact(world, rng, lambda c: bool(_received(world, c)))
        return {"name": full(c), "ids": sorted(m["id"] for m in _received(world, c))}

    def instruction(self, p):
        return f"Delete all text messages I received from {p['name']}. Keep everything else."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for msg in all_pages(apis.phone.show_text_messages, access_token=tokens["phone"],
                     phone_number=who["phone_number"], direction="received"):
    apis.phone.delete_text_message(access_token=tokens["phone"], message_id=msg["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly the received messages deleted", removed_ids(diff, "phone", "messages"), p["ids"])]


class UpdateEmail(Scenario):
    id, split, difficulty, apps = "phone_update_email", "train", 1, ("phone",)
    pattern = "edit-one"
    changes = frozenset({("phone", "contacts", "updated")})

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "id": c["id"], "email": f"{c['first_name'].lower()}.{rng.randrange(100, 999)}@work.net"}

    def instruction(self, p):
        return f"Change the email address of my contact {p['name']} to {p['email']}."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
apis.phone.update_contact(access_token=tokens["phone"], contact_id=who["id"], email={p["email"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        updated = rows(diff, "phone", "contacts", "updated")
        ok = len(updated) == 1 and updated[0][0]["id"] == p["id"] and \
            updated[0][1] == {**updated[0][0], "email": p["email"]}
        return [Check("only that contact's email changed", ok, f"updated: {updated}")]


class DeleteContact(Scenario):
    id, split, difficulty, apps = "phone_delete_contact", "train", 1, ("phone",)
    pattern = "edit-one"
    changes = frozenset({("phone", "contacts", "removed")})

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "id": c["id"]}

    def instruction(self, p):
        return f"Delete {p['name']} from my phone contacts."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
apis.phone.delete_contact(access_token=tokens["phone"], contact_id=who["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("that contact deleted", removed_ids(diff, "phone", "contacts"), [p["id"]])]


class ContactPhone(Question):
    id, split, difficulty, apps = "phone_contact_number", "test_normal", 1, ("phone",)
    pattern = "lookup"
    expected = "phone"

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "id": c["id"], "phone": c["phone_number"]}

    def instruction(self, p):
        return f"What is the phone number of my contact {p['name']}? Answer with the digits only."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
apis.supervisor.complete_task(answer=apis.phone.show_contact(access_token=tokens["phone"], contact_id=who["id"])["phone_number"])'''


class ReplyLastText(Scenario):
    id, split, difficulty, apps = "phone_reply_last_text", "test_normal", 2, ("phone",)
    pattern = "edit-one"
    changes = frozenset({("phone", "messages", "added")})

    def params(self, world, rng):
        me = world["supervisor"]["phone_number"]
        last = max((m for m in world["phone"]["messages"].values() if m["receiver"] == me),
                   key=lambda m: (m["sent_at"], m["id"]))
        return {"phone": last["sender"], "text": rng.choice(["Got it, thanks!", "Will do.", "Sounds good!"])}

    def instruction(self, p):
        return f"Reply '{p['text']}' by text message to whoever sent me the most recent text message."

    def solution(self, p):
        return f'''last = apis.phone.show_text_messages(access_token=tokens["phone"], direction="received", page_limit=1)[0]
apis.phone.send_text_message(access_token=tokens["phone"], phone_number=last["sender"], message={p["text"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "phone", "messages", {"receiver": p["phone"], "text": p["text"]},
                          "one reply to the last sender")]


class SendMoney(Scenario):
    id, split, difficulty, apps = "wallet_send_money", "train", 2, ("phone", "wallet")
    pattern = "find-person"
    changes = WALLET_PAY

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "email": c["email"], "amount": float(rng.randrange(10, 60)), "note": rng.choice(PAY_NOTES)}

    def instruction(self, p):
        return f"Send ${p['amount']:.0f} to {p['name']} with my wallet, with the note '{p['note']}'."

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=who["email"], amount={p["amount"]},
                       description={p["note"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        want = {"receiver_email": p["email"], "amount": p["amount"], "description": p["note"]}
        return [added_one(diff, "wallet", "transactions", want, "one payment to the contact"),
                balance_check(before, after, p["amount"])]


class TotalReceived(Question):
    id, split, difficulty, apps = "wallet_total_received", "test_normal", 2, ("phone", "wallet")
    pattern = "find-person"
    expected = "total"

    def params(self, world, rng):
        txs = world["wallet"]["transactions"].values()
        c = contact(world, rng, lambda c: any(t["sender_email"] == c["email"] for t in txs))
        return {"name": full(c), "total": sum(t["amount"] for t in txs if t["sender_email"] == c["email"])}

    def instruction(self, p):
        return f"How much money in total have I received from {p['name']} through my wallet? Answer with a number."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
txs = all_pages(apis.wallet.show_transactions, access_token=tokens["wallet"], email=who["email"], direction="received")
apis.supervisor.complete_task(answer=sum(t["amount"] for t in txs))'''


class HandleRequests(Scenario):
    id, split, difficulty, apps = "wallet_handle_requests", "test_normal", 3, ("phone", "wallet")
    pattern = "find-person"
    changes = WALLET_PAY | {("wallet", "requests", "updated")}

    def params(self, world, rng):
        pending = [r for r in world["wallet"]["requests"].values() if r["status"] == "pending"]
        if not pending:
            return None
        c = by_email(world)[rng.choice(sorted({r["requester_email"] for r in pending}))]
        return {"name": full(c), "email": c["email"],
                "approve": sorted(r["id"] for r in pending if r["requester_email"] == c["email"]),
                "decline": sorted(r["id"] for r in pending if r["requester_email"] != c["email"]),
                "spent": sum(r["amount"] for r in pending if r["requester_email"] == c["email"])}

    def instruction(self, p):
        return (f"In my wallet, approve every pending money request from {p['name']} and decline all other "
                "pending money requests.")

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for req in all_pages(apis.wallet.show_money_requests, access_token=tokens["wallet"], status="pending"):
    if req["requester_email"] == who["email"]:
        apis.wallet.approve_money_request(access_token=tokens["wallet"], request_id=req["id"])
    else:
        apis.wallet.decline_money_request(access_token=tokens["wallet"], request_id=req["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        status = {r["id"]: r["status"] for r in after["wallet"]["requests"].values()}
        paid = sorted(t["receiver_email"] for t in rows(diff, "wallet", "transactions", "added"))
        return [Check("requests from the person approved", all(status.get(i) == "approved" for i in p["approve"])),
                Check("other pending requests declined", all(status.get(i) == "declined" for i in p["decline"])),
                Check("one payment per approved request", paid == [p["email"]] * len(p["approve"]), f"paid {paid}"),
                balance_check(before, after, p["spent"])]


class Balance(Question):
    id, split, difficulty, apps = "wallet_balance", "train", 1, ("wallet",)
    pattern = "lookup"
    expected = "balance"

    def params(self, world, rng):
        return {"balance": world["wallet"]["account"][1]["balance"]}

    def instruction(self, p):
        return "How many dollars are in my wallet right now? Answer with a number."

    def solution(self, p):
        return 'apis.supervisor.complete_task(answer=apis.wallet.show_balance(access_token=tokens["wallet"])["balance"])'


class LargestPaymentNote(Question):
    id, split, difficulty, apps = "wallet_largest_payment_note", "test_normal", 2, ("wallet",)
    pattern = "lookup"
    expected = "note"

    def params(self, world, rng):
        me = world["supervisor"]["email"]
        sent = [t for t in world["wallet"]["transactions"].values() if t["sender_email"] == me]
        amounts = sorted((t["amount"] for t in sent), reverse=True)
        if len(amounts) < 2 or amounts[0] == amounts[1]:
            return None
        return {"note": max(sent, key=lambda t: t["amount"])["description"]}

    def instruction(self, p):
        return "What note did I write on the largest payment I ever sent from my wallet? Answer with the note."

    def solution(self, p):
        return '''sent = all_pages(apis.wallet.show_transactions, access_token=tokens["wallet"], direction="sent")
biggest = max(sent, key=lambda t: t["amount"])
tx = apis.wallet.show_transaction(access_token=tokens["wallet"], transaction_id=biggest["id"])
apis.supervisor.complete_task(answer=tx["description"])'''


class PlaylistOfArtist(Scenario):
    id, split, difficulty, apps = "music_playlist_artist", "train", 2, ("music",)
    pattern = "create"
    changes = frozenset({("music", "playlists", "added")})

    def params(self, world, rng):
        songs = world["music"]["songs"].values()
        artist = rng.choice(sorted({s["artist"] for s in songs}))
        return {"artist": artist, "title": f"Best of {artist}",
                "song_ids": sorted(s["id"] for s in songs if s["artist"] == artist)}

    def instruction(self, p):
        return f"Create a music playlist titled '{p['title']}' with every song by {p['artist']} in the catalogue."

    def solution(self, p):
        return f'''pid = apis.music.create_playlist(access_token=tokens["music"], title={p["title"]!r})["playlist_id"]
for song in all_pages(apis.music.search_songs, artist={p["artist"]!r}):
    apis.music.add_song_to_playlist(access_token=tokens["music"], playlist_id=pid, song_id=song["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "music", "playlists", "added")
        ok = len(added) == 1 and added[0]["title"] == p["title"] and sorted(added[0]["song_ids"]) == p["song_ids"]
        return [Check("playlist with exactly the artist's songs", ok, f"added: {added}")]


class TopLikedSong(Question):
    id, split, difficulty, apps = "music_top_liked", "dev", 1, ("music",)
    pattern = "lookup"
    expected = "title"

    def params(self, world, rng):
        return {"title": top_liked_title(world)}

    def instruction(self, p):
        return "Which of my liked songs have I played the most? Answer with its title."

    def solution(self, p):
        return TOP_SONG + "\napis.supervisor.complete_task(answer=title)"


class RemoveArtistFromPlaylist(Scenario):
    id, split, difficulty, apps = "music_remove_artist", "test_normal", 2, ("music",)
    pattern = "edit-all"
    changes = frozenset({("music", "playlists", "updated")})

    def params(self, world, rng):
        songs = world["music"]["songs"]
        options = [(pl, songs[s]["artist"]) for pl in world["music"]["playlists"].values() for s in pl["song_ids"]]
        playlist, artist = rng.choice(sorted(options, key=lambda o: (o[0]["id"], o[1])))
        return {"playlist": playlist["title"], "playlist_id": playlist["id"], "artist": artist,
                "keep": [s for s in playlist["song_ids"] if songs[s]["artist"] != artist]}

    def instruction(self, p):
        return f"Remove every song by {p['artist']} from my playlist '{p['playlist']}'; keep the other songs."

    def solution(self, p):
        return FIND_PLAYLIST.format(title=p["playlist"]) + f'''
for sid in apis.music.show_playlist(access_token=tokens["music"], playlist_id=pl["id"])["song_ids"]:
    if apis.music.show_song(song_id=sid)["artist"] == {p["artist"]!r}:
        apis.music.remove_song_from_playlist(access_token=tokens["music"], playlist_id=pl["id"], song_id=sid)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        now = after["music"]["playlists"].get(p["playlist_id"], {}).get("song_ids")
        return [Check("artist's songs removed, others kept in order", now == p["keep"], f"songs now {now}")]


class LikeGenreOfArtist(Scenario):
    id, split, difficulty, apps = "music_like_genre", "train", 2, ("music",)
    pattern = "edit-all"
    changes = frozenset({("music", "liked", "added")})

    def params(self, world, rng):
        liked = world["music"]["liked"]
        options = sorted({s["genre"] for s in world["music"]["songs"].values() if s["id"] not in liked})
        genre = rng.choice(options)
        return {"genre": genre, "ids": sorted(s["id"] for s in world["music"]["songs"].values()
                                              if s["genre"] == genre and s["id"] not in liked)}

    def instruction(self, p):
        return f"Like every {p['genre']} song in the music catalogue that I have not liked yet."

    def solution(self, p):
        return f'''liked = {{s["id"] for s in all_pages(apis.music.show_liked_songs, access_token=tokens["music"])}}
for song in all_pages(apis.music.search_songs, genre={p["genre"]!r}):
    if song["id"] not in liked:
        apis.music.like_song(access_token=tokens["music"], song_id=song["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly those songs liked", [r["id"] for r in rows(diff, "music", "liked", "added")], p["ids"])]


class UnlikeLeastPlayed(Scenario):
    id, split, difficulty, apps = "music_unlike_least_played", "test_normal", 2, ("music",)
    pattern = "edit-all"
    changes = frozenset({("music", "liked", "removed")})

    def params(self, world, rng):
        n = rng.randrange(2, 5)
        ranked = sorted(world["music"]["liked"].values(), key=lambda r: r["my_play_count"])
        return {"n": n, "ids": sorted(r["id"] for r in ranked[:n])}

    def instruction(self, p):
        return f"Unlike the {p['n']} liked songs I have played the least."

    def solution(self, p):
        return f'''liked = sorted(all_pages(apis.music.show_liked_songs, access_token=tokens["music"]), key=lambda s: s["my_play_count"])
for song in liked[:{p["n"]}]:
    apis.music.unlike_song(access_token=tokens["music"], song_id=song["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("the least played songs unliked", removed_ids(diff, "music", "liked"), p["ids"])]


class DeletePlaylist(Scenario):
    id, split, difficulty, apps = "music_delete_playlist", "dev", 1, ("music",)
    pattern = "edit-one"
    changes = frozenset({("music", "playlists", "removed")})

    def params(self, world, rng):
        pl = rng.choice(sorted(world["music"]["playlists"].values(), key=lambda x: x["id"]))
        return {"title": pl["title"], "id": pl["id"]}

    def instruction(self, p):
        return f"Delete my music playlist '{p['title']}'."

    def solution(self, p):
        return FIND_PLAYLIST.format(title=p["title"]) + '''
apis.music.delete_playlist(access_token=tokens["music"], playlist_id=pl["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("that playlist deleted", removed_ids(diff, "music", "playlists"), [p["id"]])]


class TextTopSong(Scenario):
    id, split, difficulty, apps = "cross_text_top_song", "test_normal", 3, ("phone", "music")
    pattern = "reconcile"
    changes = frozenset({("phone", "messages", "added")})

    def params(self, world, rng):
        c = contact(world, rng)
        return {"name": full(c), "phone": c["phone_number"], "title": top_liked_title(world)}

    def instruction(self, p):
        return (f"Text {p['name']} the title of the liked song I have played the most (the message must be just "
                "the title).")

    def solution(self, p):
        return TOP_SONG + "\n" + FIND.format(name=p["name"]) + '''
apis.phone.send_text_message(access_token=tokens["phone"], phone_number=who["phone_number"], message=title)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "phone", "messages", "added")
        ok = len(added) == 1 and added[0]["receiver"] == p["phone"] and \
            added[0]["text"].strip().lower() == p["title"].lower()
        return [Check("one message with the song title", ok, f"added: {added}")]


class PayRelationship(Scenario):
    id, split, difficulty, apps = "cross_pay_relationship", "train", 3, ("phone", "wallet")
    pattern = "reconcile"
    changes = WALLET_PAY

    def params(self, world, rng):
        contacts = world["phone"]["contacts"].values()
        rels = [r for r in RELATIONSHIPS if 1 <= sum(r in c["relationships"] for c in contacts) <= 6]
        rel = rng.choice(rels)
        emails = sorted(c["email"] for c in contacts if rel in c["relationships"])
        return {"rel": rel, "emails": emails, "amount": float(rng.randrange(5, 25)), "note": rng.choice(PAY_NOTES)}

    def instruction(self, p):
        return (f"Send ${p['amount']:.0f} with my wallet to each of my phone contacts with the relationship "
                f"'{p['rel']}', with the note '{p['note']}'.")

    def solution(self, p):
        return f'''for who in all_pages(apis.phone.search_contacts, access_token=tokens["phone"], relationship={p["rel"]!r}):
    apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=who["email"], amount={p["amount"]},
                           description={p["note"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "wallet", "transactions", "added")
        ok = sorted(t["receiver_email"] for t in added) == p["emails"] and all(
            abs(t["amount"] - p["amount"]) < 0.01 and t["description"] == p["note"] for t in added)
        return [Check("one payment to each such contact", ok, f"added: {added}"),
                balance_check(before, after, p["amount"] * len(p["emails"]))]


class TagFrequentPayers(Scenario):
    id, split, difficulty, apps = "cross_tag_payers", "train", 3, ("phone", "wallet")
    pattern = "reconcile"
    changes = frozenset({("phone", "contacts", "updated")})

    def params(self, world, rng):
        me = world["supervisor"]["email"]
        counts: dict[str, int] = {}
        for t in world["wallet"]["transactions"].values():
            if t["receiver_email"] == me:
                counts[t["sender_email"]] = counts.get(t["sender_email"], 0) + 1
        n = rng.choice((2, 3))
        ids = sorted(c["id"] for c in world["phone"]["contacts"].values()
                     if counts.get(c["email"], 0) >= n and "payer" not in c["relationships"])
        return {"n": n, "ids": ids} if ids else None

    def instruction(self, p):
        return (f"Add the relationship 'payer' to every phone contact who has sent me money at least {p['n']} times "
                "through my wallet (keep their other relationships).")

    def solution(self, p):
        return f'''received = all_pages(apis.wallet.show_transactions, access_token=tokens["wallet"], direction="received")
for who in all_pages(apis.phone.search_contacts, access_token=tokens["phone"]):
    if sum(t["sender_email"] == who["email"] for t in received) >= {p["n"]}:
        apis.phone.update_contact(access_token=tokens["phone"], contact_id=who["id"],
                                  relationships=who["relationships"] + ["payer"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        ok = all(after["phone"]["contacts"][i]["relationships"] ==
                 before["phone"]["contacts"][i]["relationships"] + ["payer"] for i in p["ids"])
        return [same_ids("exactly the frequent payers updated", updated_ids(diff, "phone", "contacts"), p["ids"]),
                Check("'payer' added, other relationships kept", ok)]


SCENARIOS = [TextContact(), AddContact(), CountRelationship(), DeleteReceived(), UpdateEmail(), DeleteContact(),
             ContactPhone(), ReplyLastText(), SendMoney(), TotalReceived(), HandleRequests(), Balance(),
             LargestPaymentNote(), PlaylistOfArtist(), TopLikedSong(), RemoveArtistFromPlaylist(), LikeGenreOfArtist(),
             UnlikeLeastPlayed(), DeletePlaylist(), TextTopSong(), PayRelationship(), TagFrequentPayers()]
