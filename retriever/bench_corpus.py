"""The routing benchmark's corpus: hand-written skills with labelled queries, plus distractors.

The labelled skills cover the project's domains (Sokoban play, the phone / wallet / music /
calendar / email / notes / shopping apps, generic agent routines and plans); each has two
queries written as a user would ask (paraphrases, not the skill's words). The distractor
generator makes any number (100K+) of plausible skills for other apps and tools,
deterministically from a seed, so scale can be measured without false negatives.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from retriever.docs import RouterDoc


@dataclass(frozen=True)
class LabelledQuery:
    """A benchmark query, the id of the skill that answers it, and its split (``train``/``test``)."""

    id: str
    query: str
    positive: str
    split: str


# (category, tier, name, description, body, [train query, test query])
CORE_SKILLS: list[tuple[str, str, str, str, str, list[str]]] = [
    # --- Sokoban --------------------------------------------------------------------------------
    ("sokoban", "functional", "sokoban-push-box-to-target",
     "Move a box onto a target square by standing on the opposite side and pushing.",
     "Find the target, walk to the cell directly behind the box (away from the target) without pushing "
     "anything, then push repeatedly along the line. If the line bends, push to the turning cell first.",
     ["how do I get a crate onto a goal tile", "move the block so it sits on the O mark"]),
    ("sokoban", "atomic", "sokoban-avoid-corner-deadlock",
     "Never push a box into a corner that is not a target: it can never be moved again.",
     "Before every push check the cell the box will land on: if two walls meet there (up+left, up+right, "
     "down+left, down+right) and it is not a target, choose another push.",
     ["a crate got stuck against two walls and cannot move", "which pushes make the level unsolvable forever"]),
    ("sokoban", "atomic", "sokoban-avoid-wall-deadlock",
     "Do not push a box against a wall unless a target lies along that wall.",
     "A box flush against a wall can only slide along it. Push it there only when the same wall row or "
     "column contains a free target.",
     ["is it safe to shove a crate along the edge of the room", "box is stuck on the border with no goal"]),
    ("sokoban", "functional", "sokoban-reposition-player",
     "Walk the player around boxes to reach a pushing position without moving any box.",
     "Plan a path over floor cells only (BFS on free cells, boxes are obstacles). Moves are Up/Down/Left/"
     "Right; a move into a box pushes it, so route around.",
     ["get my character to the other side of the crate", "navigate the worker around obstacles first"]),
    ("sokoban", "planning", "sokoban-plan-two-box-level",
     "Plan for a level with two boxes: order the boxes so the first one does not block the second.",
     "1. Pair each box with its nearest reachable target. 2. Push first the box whose path does not cross "
     "the other. 3. Re-check deadlocks after every push. 4. Park the solved box on its target.",
     ["which crate should I solve first when there are two", "order of solving multiple boxes"]),
    ("sokoban", "atomic", "sokoban-undo-after-mistake",
     "When a push made the level unsolvable, reset the level instead of wandering.",
     "Recognise deadlock (box in non-target corner, two boxes side by side on a wall). Spending the step "
     "budget will not help: issue the reset action or stop and report failure.",
     ["I ruined the puzzle, what now", "restart the level after a bad move"]),
    ("sokoban", "atomic", "sokoban-read-board-symbols",
     "Read the text board: # wall, _ floor, O target, X box, √ box on target, P player, S player on target.",
     "Parse rows top to bottom, columns left to right; coordinates are (row, col). Count X to know how many "
     "boxes remain unsolved.",
     ["what does the checkmark character mean on the grid", "decode the map legend of the puzzle"]),
    ("sokoban", "atomic", "sokoban-pull-box-out-of-wall",
     "Boxes cannot be pulled: plan pushes so you never need to pull a box away from a wall.",
     "Only pushes exist. If you need the box to move away from the wall you are already in a deadlock; "
     "avoid it by checking the push direction before committing.",
     ["can I drag a crate back toward me", "how to get a box off the wall I pushed it to"]),
    ("sokoban", "functional", "sokoban-tunnel-pushing",
     "Push a box through a one-cell-wide corridor without getting it stuck.",
     "In a tunnel you can only push straight. Make sure the exit cell is free and the box leaves the "
     "tunnel toward a target; never stop pushing inside a dead-end corridor.",
     ["moving a crate down a narrow hallway", "box in a one-wide passage"]),
    ("sokoban", "atomic", "sokoban-count-steps-budget",
     "Track the remaining step budget: each move costs -0.1 reward, so take the shortest plan.",
     "Episodes end after the step limit (e.g. 40). Count moves, avoid oscillating Left/Right, and prefer "
     "push sequences that solve a box in one go.",
     ["I keep running out of moves", "how to finish the puzzle within the move limit"]),
    # --- Phone ----------------------------------------------------------------------------------
    ("phone", "atomic", "phone-send-text-message",
     "Send an SMS text message to one contact.",
     "contact = phone.search_contacts(query=name)[0]; phone.send_text_message(phone_number=contact['phone'], "
     "message=text). Numbers must be in the contact list; check the result status.",
     ["text my mom that I will be late", "shoot a quick sms to Jake"]),
    ("phone", "atomic", "phone-search-contacts",
     "Look up a person in the phone's address book by name, relationship or number.",
     "phone.search_contacts(query='...', relationship='sister') returns a list of contacts with name, phone, "
     "email, relationships. Paginate with page_index until an empty page.",
     ["find my sister's number", "who is saved as my roommate in the address book"]),
    ("phone", "atomic", "phone-add-contact",
     "Create a new contact entry with a name and phone number.",
     "phone.add_contact(first_name, last_name, phone_number, email=None, relationships=[]). Fails when the "
     "number already exists: search first.",
     ["save this new number for my dentist", "put a new person in my address book"]),
    ("phone", "atomic", "phone-set-alarm",
     "Create or enable an alarm at a given time on the phone.",
     "phone.create_alarm(time='07:30', repeat_days=['monday'], label='gym', enabled=True). Times are 24h "
     "strings; use phone.update_alarm to change an existing one.",
     ["wake me up at 6:45 tomorrow", "schedule a weekday 7am wake-up"]),
    ("phone", "atomic", "phone-delete-alarm",
     "Remove alarms, e.g. all alarms that are disabled or have a given label.",
     "alarms = phone.show_alarms(); for a in alarms: if not a['enabled']: phone.delete_alarm(alarm_id=a['id']).",
     ["get rid of the alarms I switched off", "clear my old wake-up timers"]),
    ("phone", "atomic", "phone-read-messages",
     "Read recent text messages, optionally from one contact or unread only.",
     "phone.search_text_messages(sender=number, unread_only=True, sort_by='-created_at'). Mark them read "
     "with phone.mark_message_read(message_id).",
     ["what did my boss text me today", "show unread sms"]),
    ("phone", "atomic", "phone-call-log",
     "Inspect missed, incoming and outgoing calls.",
     "phone.show_call_log(kind='missed', since='2024-05-01'); each entry has number, contact name, duration, "
     "timestamp.",
     ["who tried to ring me while I was asleep", "list the calls I didn't pick up"]),
    ("phone", "functional", "phone-reply-to-latest-message",
     "Reply to the most recent message from a contact with a given text.",
     "1. contact = phone.search_contacts(name). 2. msgs = phone.search_text_messages(sender=contact phone). "
     "3. phone.send_text_message(contact phone, reply). Keep the same thread.",
     ["answer Lisa's last text saying ok", "respond to the newest message from my dad"]),
    # --- Wallet ---------------------------------------------------------------------------------
    ("wallet", "atomic", "wallet-send-money",
     "Transfer money from the user's wallet balance to another person.",
     "wallet.send_money(receiver_email, amount, description, payment_card_id=None). Check wallet.show_balance() "
     "first; amounts are positive decimals in the account currency.",
     ["pay Alice back 20 dollars", "transfer fifty bucks to my brother"]),
    ("wallet", "atomic", "wallet-request-money",
     "Ask another person to pay you a given amount.",
     "wallet.create_payment_request(user_email, amount, description). The other side sees a pending request; "
     "list yours with wallet.show_payment_requests(status='pending').",
     ["ask Tom to pay me for the concert tickets", "bill my roommate for half the rent"]),
    ("wallet", "atomic", "wallet-check-balance",
     "Read the wallet's current balance.",
     "wallet.show_balance() -> {'amount': float, 'currency': str}. Call before sending money to avoid "
     "insufficient-funds errors.",
     ["how much money do I have left", "what's in my account right now"]),
    ("wallet", "atomic", "wallet-list-transactions",
     "List past payments with filters on dates, direction and counterparty.",
     "wallet.show_transactions(min_created_at, max_created_at, direction='sent'|'received', user_email=None, "
     "page_index=0). Sum 'amount' to total spending.",
     ["how much did I spend last month", "show every payment I got from Sam"]),
    ("wallet", "atomic", "wallet-approve-payment-request",
     "Approve (pay) or deny a pending payment request someone sent you.",
     "reqs = wallet.show_payment_requests(status='pending', direction='received'); wallet.approve_payment_request"
     "(request_id) or wallet.deny_payment_request(request_id).",
     ["accept the money request from my landlord", "decline the charge Bob asked me for"]),
    ("wallet", "atomic", "wallet-add-payment-card",
     "Register a new debit or credit card with the wallet.",
     "wallet.add_payment_card(card_name, owner_name, card_number, expiry_year, expiry_month, cvv). Use "
     "wallet.show_payment_cards() to list cards and their ids.",
     ["link my new visa", "put another credit card on file"]),
    ("wallet", "functional", "wallet-split-bill",
     "Split a shared expense evenly and request each person's share.",
     "1. share = round(total / (n_people + 1), 2). 2. For each friend: wallet.create_payment_request(email, "
     "share, description). 3. Verify with wallet.show_payment_requests().",
     ["divide the dinner cost between me and three friends", "everyone owes me part of the cab fare"]),
    ("wallet", "planning", "wallet-plan-monthly-budget",
     "Plan: review a month of spending, group it by category and set limits.",
     "1. wallet.show_transactions for the month (all pages). 2. Group by description keywords. 3. Compare with "
     "last month. 4. Write the budget to a note.",
     ["help me figure out a spending budget", "where does my money go each month"]),
    # --- Music ----------------------------------------------------------------------------------
    ("music", "atomic", "music-play-playlist",
     "Start playback of one of the user's playlists.",
     "lists = music.show_playlist_library(); find by title; music.play_music(playlist_id=pid, shuffle=False).",
     ["put on my workout mix", "start the road trip songs list"]),
    ("music", "atomic", "music-create-playlist",
     "Make a new playlist and add songs to it.",
     "pid = music.create_playlist(title, is_public=False); for s in song_ids: music.add_song_to_playlist("
     "playlist_id=pid, song_id=s).",
     ["build a new mix called rainy day", "make a collection of songs for the party"]),
    ("music", "atomic", "music-search-songs",
     "Find songs by title, artist, album or genre in the catalog.",
     "music.search_songs(query='...', artist_id=None, genre='jazz', min_release_date=None, page_index=0). "
     "Each song has id, title, artists, album, duration, play_count.",
     ["find tracks by Adele", "look up that song called yellow"]),
    ("music", "atomic", "music-like-song",
     "Like or unlike a song so it appears in the liked songs library.",
     "music.like_song(song_id) / music.unlike_song(song_id); list with music.show_liked_songs(page_index).",
     ["favorite this track", "heart the song that's playing now"]),
    ("music", "functional", "music-most-played-in-library",
     "Find the user's most played song or artist over their library.",
     "Collect songs from music.show_song_library() (all pages), read play_count via music.show_song(song_id), "
     "take the max. Ties: pick the earliest added.",
     ["what's my top track of all time", "which artist do I listen to the most"]),
    ("music", "atomic", "music-queue-control",
     "Control the playback queue: skip, previous, pause, resume, volume.",
     "music.next_song(), music.previous_song(), music.pause_music(), music.resume_music(), "
     "music.set_volume(0-100). music.show_current_song() returns what plays now.",
     ["skip to the next track", "turn the music down a bit"]),
    ("music", "atomic", "music-follow-artist",
     "Follow an artist to get their new releases.",
     "artist = music.search_artists(query=name)[0]; music.follow_artist(artist_id=artist['id']).",
     ["subscribe to Taylor Swift's new releases", "keep up with a band's new albums"]),
    # --- Calendar -------------------------------------------------------------------------------
    ("calendar", "atomic", "calendar-create-event",
     "Add an event with a title, start and end time and attendees.",
     "calendar.create_event(title, start='2024-05-02T15:00', end=..., attendees=[emails], location=None). "
     "Times are ISO strings in the user's timezone.",
     ["put a dentist appointment on friday at 3", "schedule lunch with Maya next tuesday"]),
    ("calendar", "atomic", "calendar-find-free-slot",
     "Find a free time slot of a given length within working hours.",
     "busy = calendar.list_events(start, end); scan 9:00-17:00 for gaps >= duration; return the first.",
     ["when am I available for an hour tomorrow", "find a gap in my day for a call"]),
    ("calendar", "atomic", "calendar-cancel-event",
     "Delete an event and notify attendees.",
     "ev = calendar.search_events(query=title, date=day)[0]; calendar.delete_event(event_id=ev['id'], "
     "notify=True).",
     ["call off tomorrow's team sync", "remove the meeting with Ravi"]),
    ("calendar", "atomic", "calendar-reschedule-event",
     "Move an existing event to a different time.",
     "ev = calendar.search_events(...)[0]; calendar.update_event(event_id, start=new_start, end=new_end). "
     "Keep the duration unless told otherwise.",
     ["push my 2pm to 4pm", "move the standup an hour later"]),
    ("calendar", "atomic", "calendar-list-todays-events",
     "List today's events in order.",
     "calendar.list_events(start=today 00:00, end=today 23:59, sort_by='start').",
     ["what's on my agenda today", "do I have meetings this afternoon"]),
    # --- Email ----------------------------------------------------------------------------------
    ("email", "atomic", "email-send",
     "Compose and send an email to one or more recipients.",
     "email.send_email(to=[addresses], subject, body, cc=[], attachments=[file_paths]).",
     ["write to my professor about the deadline", "mail the report to the team"]),
    ("email", "atomic", "email-search-inbox",
     "Search received emails by sender, subject words, date or unread state.",
     "email.search_emails(query='invoice', sender=None, unread=None, after='2024-01-01', page_index=0).",
     ["find the message from the airline", "look for that receipt in my mail"]),
    ("email", "atomic", "email-reply",
     "Reply to an email thread, keeping the subject.",
     "thread = email.show_thread(thread_id); email.reply_to_email(email_id=last['id'], body, reply_all=False).",
     ["answer the landlord's email", "respond to everyone on that thread"]),
    ("email", "atomic", "email-download-attachment",
     "Save attachments of an email to the file system.",
     "for att in email.show_email(email_id)['attachments']: email.download_attachment(attachment_id, "
     "path='~/downloads/'+att['name']).",
     ["save the pdf my accountant sent", "grab the file attached to that mail"]),
    ("email", "atomic", "email-archive-old",
     "Archive or delete emails older than a date or from a sender.",
     "ids = [e['id'] for e in email.search_emails(before=date)]; email.archive_emails(ids).",
     ["clean up my inbox from last year", "bulk tidy messages from newsletters"]),
    # --- Notes / files ----------------------------------------------------------------------------
    ("notes", "atomic", "notes-create-note",
     "Create a note with a title and text, optionally tagged.",
     "notes.create_note(title, content, tags=['todo']). Returns the note id.",
     ["jot down this grocery list", "write a memo about the meeting"]),
    ("notes", "atomic", "notes-search-notes",
     "Find notes by words in the title or content, or by tag.",
     "notes.search_notes(query='...', tags=None, page_index=0) -> notes with id, title, content, tags.",
     ["where did I write down the wifi password", "look for my recipe notes"]),
    ("notes", "atomic", "notes-update-checklist",
     "Tick items of a checklist note as done or add new items.",
     "note = notes.show_note(note_id); lines = content.split('\\n'); mark '- [x] item'; notes.update_note("
     "note_id, content='\\n'.join(lines)).",
     ["mark milk as bought on my list", "check off the finished tasks"]),
    ("files", "atomic", "files-compress-folder",
     "Compress a folder into a zip archive.",
     "files.compress(path='~/photos/trip', output='~/trip.zip', format='zip'). Check free space first.",
     ["zip up the vacation pictures", "make an archive of the project directory"]),
    ("files", "atomic", "files-move-and-rename",
     "Move or rename files matching a pattern.",
     "for f in files.list_directory(path, pattern='*.jpg'): files.move(f, new_path). Avoid overwriting: check "
     "files.exists first.",
     ["rename all the screenshots by date", "put these documents in another folder"]),
    # --- Shopping ---------------------------------------------------------------------------------
    ("shopping", "atomic", "shopping-add-to-cart",
     "Add a product to the shopping cart with a quantity.",
     "p = shopping.search_products(query)[0]; shopping.add_product_to_cart(product_id=p['id'], quantity=n).",
     ["buy two packs of AA batteries", "put running shoes in my basket"]),
    ("shopping", "atomic", "shopping-checkout",
     "Place the order for everything in the cart with a saved address and card.",
     "shopping.checkout(payment_card_id, address_id). Read shopping.show_cart() first to confirm items and total.",
     ["complete my purchase", "pay for the stuff in my basket"]),
    ("shopping", "atomic", "shopping-return-item",
     "Start a return for an item of a delivered order.",
     "order = shopping.show_orders(status='delivered'); shopping.initiate_return(order_id, product_id, reason).",
     ["send back the jacket that doesn't fit", "get a refund for a broken blender"]),
    ("shopping", "atomic", "shopping-track-order",
     "Check the delivery status of an order.",
     "shopping.show_order(order_id)['status'] in {'placed','shipped','delivered'}; tracking number included.",
     ["where is my package", "has my parcel shipped yet"]),
    ("shopping", "atomic", "shopping-apply-coupon",
     "Apply a discount code to the cart before checkout.",
     "shopping.apply_promo_code(code); check shopping.show_cart()['discount']. Invalid codes raise an error.",
     ["use my promo code SAVE10", "get the voucher discount on this order"]),
    # --- Generic agent skills ---------------------------------------------------------------------
    ("agent", "atomic", "agent-paginate-api-results",
     "Collect every page of a paginated API instead of only the first page.",
     "page = 0; while True: items = api(..., page_index=page); if not items: break; all += items; page += 1.",
     ["the list only shows the first 20 results", "get all the items, not just one page"]),
    ("agent", "atomic", "agent-login-before-api",
     "Authenticate with an app before calling its protected APIs.",
     "token = supervisor.show_account_passwords() -> find the app; app.login(username, password) -> access "
     "token; pass it to later calls.",
     ["I get 401 unauthorized when calling the app", "sign in to the service first"]),
    ("agent", "atomic", "agent-read-api-docs",
     "Look up an app's API documentation before using an unfamiliar call.",
     "apis.api_docs.show_api_descriptions(app_name); apis.api_docs.show_api_doc(app_name, api_name) shows "
     "parameters, types and the response schema.",
     ["what parameters does this endpoint accept", "which functions does the app offer"]),
    ("agent", "atomic", "agent-complete-task",
     "Signal that the task is finished, with the answer when the task asks a question.",
     "apis.supervisor.complete_task(answer=value) ends the episode; answer=None for tasks that only change "
     "state. Never call it before the changes are made.",
     ["I'm done, how do I submit the final answer", "end the task and report the result"]),
    ("agent", "atomic", "agent-handle-date-ranges",
     "Turn phrases like 'last month' or 'this week' into exact date ranges.",
     "Use the environment's current date (not the system clock); last month = first..last day of the previous "
     "calendar month; ISO format YYYY-MM-DD.",
     ["what dates does 'previous week' mean", "convert yesterday into a timestamp filter"]),
    ("agent", "functional", "agent-retry-on-error",
     "Recover from a failed API call by reading the error and fixing the arguments.",
     "Print the exception message; typical causes: wrong parameter name, missing login token, bad id. Fix one "
     "thing, retry once; do not loop on the same call.",
     ["the call raised an exception, what should I do", "my request keeps failing with an error"]),
    ("agent", "planning", "agent-plan-multi-app-task",
     "Plan a task that spans several apps: gather data in one, act in another.",
     "1. List the apps involved. 2. Log in to each. 3. Read the needed data (contacts, transactions). "
     "4. Perform the action. 5. Verify the final state. 6. Complete the task.",
     ["the job needs info from one app and changes in another", "coordinate work across different services"]),
    ("agent", "functional", "agent-verify-final-state",
     "Check that the intended changes actually happened before finishing.",
     "Re-read the objects you changed (show_* calls) and compare with the goal; fix mismatches before "
     "completing the task.",
     ["double check my changes went through", "confirm the update really happened"]),
    ("agent", "atomic", "agent-ask-clarification",
     "When a request is ambiguous, ask the user a short clarifying question instead of guessing.",
     "List the interpretations; if more than one is plausible and the action is irreversible (payments, "
     "deletions) ask which one is meant.",
     ["the instruction could mean two things", "not sure which contact the user meant"]),
    # --- Trajectory-tier lessons ----------------------------------------------------------------------
    ("wallet", "trajectory", "lesson-wallet-refund-duplicate-payment",
     "Lesson from a failed episode: refunding a duplicate payment needs the original transaction id.",
     "Mistake: sent a new payment instead of refunding. Golden workflow: show_transactions(direction='sent', "
     "user_email) -> find the duplicate -> wallet.refund_transaction(transaction_id).",
     ["I paid someone twice by accident", "undo a payment I sent two times"]),
    ("sokoban", "trajectory", "lesson-sokoban-oscillation",
     "Lesson from a failed episode: the agent alternated Left and Right until the step limit.",
     "Mistake: no progress for 20 steps. Fix: after 3 moves without a push, recompute a path to a pushing "
     "position; never undo the previous move unless it was a mistake.",
     ["my agent walks back and forth without progress", "stuck repeating the same two moves"]),
]


def core_docs() -> list[RouterDoc]:
    """The labelled skills as router docs (ids ``core-<name>``)."""
    return [RouterDoc(id=f"core-{name}", name=name, description=desc, body=body, tier=tier, category=cat)
            for cat, tier, name, desc, body, _ in CORE_SKILLS]


def labelled_queries() -> list[LabelledQuery]:
    """Two queries per skill: the first in the ``train`` split, the second held out as ``test``."""
    out = []
    for _cat, _tier, name, _d, _b, queries in CORE_SKILLS:
        for n, (query, split) in enumerate(zip(queries, ("train", "test"))):
            out.append(LabelledQuery(f"{name}#{n}", query, f"core-{name}", split))
    return out


# --- distractors ----------------------------------------------------------------------------------
_DOMAINS = {
    "crm": ["lead", "deal", "account", "pipeline stage", "sales contact", "opportunity"],
    "inventory": ["stock level", "sku", "warehouse bin", "reorder point", "supplier", "pallet"],
    "hr": ["leave request", "payslip", "employee record", "job posting", "onboarding checklist", "timesheet"],
    "kubernetes": ["pod", "deployment", "config map", "namespace", "ingress rule", "node pool"],
    "spreadsheet": ["cell range", "pivot table", "formula", "worksheet", "chart", "named range"],
    "weather": ["forecast", "pollen index", "storm alert", "uv reading", "radar map", "humidity history"],
    "recipes": ["recipe", "ingredient list", "meal plan", "nutrition label", "cooking timer", "pantry item"],
    "fitness": ["workout session", "step count", "heart rate zone", "training plan", "personal record"],
    "travel": ["flight booking", "hotel reservation", "boarding pass", "itinerary", "visa requirement"],
    "github": ["pull request", "issue", "branch", "release tag", "workflow run", "code review comment"],
    "database": ["table", "index", "migration", "query plan", "backup snapshot", "replication lag"],
    "smart-home": ["thermostat schedule", "light scene", "door lock", "security camera", "energy report"],
    "banking-admin": ["loan application", "mortgage statement", "tax form", "interest rate", "credit score"],
    "ride-share": ["ride request", "driver rating", "fare estimate", "pickup location", "trip receipt"],
    "food-delivery": ["restaurant menu", "delivery order", "courier tip", "dietary filter", "reorder list"],
    "learning": ["course module", "quiz attempt", "flashcard deck", "study streak", "certificate"],
    "photos": ["album", "face tag", "photo edit", "shared gallery", "slideshow", "raw import"],
    "maps": ["saved place", "route", "traffic report", "offline region", "transit schedule"],
    "support-desk": ["ticket", "sla timer", "canned response", "escalation rule", "customer survey"],
    "accounting": ["invoice", "expense claim", "ledger entry", "purchase order", "vat return"],
    "social": ["post", "follower list", "direct message thread", "story highlight", "hashtag trend"],
    "video": ["subtitle track", "watch history", "channel subscription", "live stream", "clip"],
    "cloud-storage": ["sharing link", "storage quota", "file version", "sync conflict", "trash bin"],
    "chess": ["opening line", "endgame position", "puzzle rating", "game analysis", "time control"],
    "gardening": ["watering schedule", "seed tray", "soil test", "pest report", "harvest log"],
    "podcast": ["episode", "show subscription", "playback speed", "transcript", "download queue"],
    "ci-pipeline": ["build job", "test shard", "artifact", "cache key", "deployment gate"],
    "parking": ["parking permit", "meter session", "garage slot", "parking fine"],
    "library-loans": ["book loan", "hold request", "overdue fee", "reading list"],
    "pet-care": ["vet appointment", "vaccination record", "feeding schedule", "pet profile"],
}
_VERBS = ["create", "update", "delete", "list", "export", "import", "archive", "restore", "schedule",
          "validate", "summarize", "compare", "filter", "sort", "merge", "duplicate", "share", "lock",
          "audit", "tag", "approve", "reject", "sync", "monitor", "forecast", "rank", "flag", "reset",
          "annotate", "batch-edit"]
_QUALIFIERS = ["", "in bulk", "for a date range", "by owner", "with retries", "from a csv file",
               "with a dry run first", "for the current week", "across all projects", "by priority",
               "with pagination", "with an audit note", "for a single user", "on a schedule",
               "after a confirmation prompt", "for archived entries", "using a saved filter", "for a team",
               "with a webhook notification", "from the mobile client", "with undo support",
               "for the last quarter", "by region", "with conflict detection"]
_PITFALLS = ["the API returns at most 50 records per page", "ids are strings, not integers",
             "timestamps are UTC", "the call is rate limited to 10 per second",
             "deleted records stay in a recycle area for 30 days", "partial failures are reported per item",
             "the endpoint needs an admin token", "names are matched case-insensitively",
             "a dry-run flag previews changes", "fields missing from the request are left unchanged"]


def _slug(text: str) -> str:
    return "-".join(text.replace("/", " ").split()).lower()


def distractor_docs(n: int, seed: int = 0) -> Iterator[RouterDoc]:
    """``n`` plausible skills for apps and tools outside the labelled set, deterministic in ``seed``.

    Combinations of domain x object x verb x qualifier are enumerated in a seeded order, so the
    first ``n`` are the same for any larger ``n`` and names never repeat (about 113K combinations).
    """
    combos = [(d, o, v, q) for d, objs in _DOMAINS.items() for o in objs for v in _VERBS for q in _QUALIFIERS]
    if n > len(combos):
        raise ValueError(f"at most {len(combos)} distinct distractors, asked for {n}")
    rng = random.Random(seed)
    rng.shuffle(combos)
    tiers = ["atomic", "atomic", "functional", "planning"]
    for i, (domain, obj, verb, qual) in enumerate(combos[:n]):
        r = random.Random(seed * 1_000_003 + i)
        api = f"{domain.replace('-', '_')}.{verb.replace('-', '_')}_{obj.replace(' ', '_')}"
        name = _slug(f"{domain} {verb} {obj} {qual}")[:64].rstrip("-")
        desc = f"{verb.replace('-', ' ').capitalize()} {obj}s in the {domain} app{' ' + qual if qual else ''}."
        other = r.choice(_DOMAINS[domain])
        body = (f"Call {api}(...) with the {obj} id. First list candidates with {domain.replace('-', '_')}."
                f"list_{other.replace(' ', '_')}s to resolve names to ids. Note: {r.choice(_PITFALLS)}; "
                f"{r.choice(_PITFALLS)}.")
        yield RouterDoc(id=f"dx-{i}", name=name, description=desc, body=body, tier=r.choice(tiers),
                        category=domain)
