"""Test-challenge scenarios: each needs the file storage app, which no train scenario uses."""

from __future__ import annotations

import re

from environments.apps.scenarios.base import (
    WALLET_PAY,
    Check,
    Question,
    Scenario,
    added_one,
    balance_check,
    by_email,
    contact,
    emailed_lines,
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

FILE_UPDATED = frozenset({("files", "files", "updated")})


def _files(world: dict, **where) -> list[dict]:
    return sorted((f for f in world["files"]["files"].values() if all(f[k] == v for k, v in where.items())),
                  key=lambda f: (f["name"], f["id"]))


def _amount(content: str) -> float:
    return float(re.search(r"Amount: ([\d.]+)", content).group(1))


FIND_FILE = '''f = [x for x in all_pages(apis.files.list_files, access_token=tokens["files"], folder={folder!r}) if x["name"] == {name!r}][0]'''
AMOUNT = 'float(re.search(r"Amount: ([\\d.]+)", content).group(1))'


class CountFolder(Question):
    id, split, difficulty, apps = "files_count_folder", "test_challenge", 1, ("files",)
    pattern = "aggregate"
    expected = "count"

    def params(self, world, rng):
        folder = rng.choice(["Documents", "Photos", "Receipts", "Work"])
        return {"folder": folder, "count": len(_files(world, folder=folder))}

    def instruction(self, p):
        return f"How many files are in my '{p['folder']}' folder in file storage? Answer with a number."

    def solution(self, p):
        return f'''folders = apis.files.list_folders(access_token=tokens["files"])
apis.supervisor.complete_task(answer=[f for f in folders if f["name"] == {p["folder"]!r}][0]["num_files"])'''


class CreateFile(Scenario):
    id, split, difficulty, apps = "files_create", "test_challenge", 1, ("files",)
    pattern = "create"
    changes = frozenset({("files", "files", "added")})

    def params(self, world, rng):
        return {"name": rng.choice(["packing.txt", "wishes.txt", "recipes.txt"]), "folder": rng.choice(["Documents", "Work"]),
                "content": rng.choice(["Socks, charger, passport.", "A bike and a book.", "Pancakes: flour, milk, eggs."])}

    def instruction(self, p):
        return f"Create a file '{p['name']}' in my '{p['folder']}' folder with the content '{p['content']}'."

    def solution(self, p):
        return f'''apis.files.create_file(access_token=tokens["files"], name={p["name"]!r}, folder={p["folder"]!r}, content={p["content"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "files", "files", {"name": p["name"], "folder": p["folder"], "content": p["content"]},
                          "the file created")]


class ShareWithContact(Scenario):
    id, split, difficulty, apps = "files_share_contact", "test_challenge", 2, ("phone", "files")
    pattern = "find-person"
    changes = FILE_UPDATED

    def params(self, world, rng):
        f = rng.choice(_files(world, folder="Documents") or _files(world))
        c = contact(world, rng, lambda c: c["email"] not in f["shared_with"])
        return {"file": f["name"], "folder": f["folder"], "id": f["id"], "name": full(c), "email": c["email"]}

    def instruction(self, p):
        return f"Share the file '{p['file']}' in my '{p['folder']}' folder with my contact {p['name']}."

    def solution(self, p):
        return FIND.format(name=p["name"]) + "\n" + FIND_FILE.format(folder=p["folder"], name=p["file"]) + '''
apis.files.share_file(access_token=tokens["files"], file_id=f["id"], email=who["email"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        shared = after["files"]["files"][p["id"]]["shared_with"]
        return [same_ids("only that file changed", updated_ids(diff, "files", "files"), [p["id"]]),
                Check("shared with the contact", p["email"] in shared, f"shared with {shared}")]


class UnshareAll(Scenario):
    id, split, difficulty, apps = "files_unshare_person", "test_challenge", 2, ("phone", "files")
    pattern = "find-person"
    changes = FILE_UPDATED

    def params(self, world, rng):
        emails = sorted({e for f in world["files"]["files"].values() for e in f["shared_with"]})
        if not emails:
            return None
        email = rng.choice(emails)
        c = by_email(world)[email]
        return {"name": full(c), "email": email, "ids": [f["id"] for f in _files(world) if email in f["shared_with"]]}

    def instruction(self, p):
        return f"Stop sharing every file in my file storage with {p['name']}."

    def solution(self, p):
        return FIND.format(name=p["name"]) + '''
for f in all_pages(apis.files.list_files, access_token=tokens["files"]):
    if who["email"] in f["shared_with"]:
        apis.files.unshare_file(access_token=tokens["files"], file_id=f["id"], email=who["email"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        still = [i for i in p["ids"] if p["email"] in after["files"]["files"][i]["shared_with"]]
        return [same_ids("exactly those files changed", updated_ids(diff, "files", "files"), p["ids"]),
                Check("no file shared with the person", not still, f"still shared: {still}")]


class ReceiptsTotal(Question):
    id, split, difficulty, apps = "files_receipts_total", "test_challenge", 2, ("files",)
    pattern = "aggregate"
    expected = "total"

    def params(self, world, rng):
        store = rng.choice(sorted({re.search(r"Store: (\w+)", f["content"]).group(1) for f in _files(world, folder="Receipts")}))
        rec = [f for f in _files(world, folder="Receipts") if f"Store: {store}\n" in f["content"]]
        return {"store": store, "total": round(sum(_amount(f["content"]) for f in rec), 2)}

    def instruction(self, p):
        return f"How much did I spend at {p['store']} according to the receipt files in my 'Receipts' folder? Answer with a number."

    def solution(self, p):
        return f'''import re
total = 0.0
for f in all_pages(apis.files.list_files, access_token=tokens["files"], folder="Receipts"):
    content = apis.files.show_file(access_token=tokens["files"], file_id=f["id"])["content"]
    if "Store: {p["store"]}\\n" in content:
        total += {AMOUNT}
apis.supervisor.complete_task(answer=round(total, 2))'''


class FilePhotos(Scenario):
    id, split, difficulty, apps = "files_sort_photos", "test_challenge", 2, ("files",)
    pattern = "edit-all"
    changes = frozenset({("files", "folders", "added"), ("files", "files", "updated")})

    def params(self, world, rng):
        folder = rng.choice(["Photos 2024", "Camera", "Pictures"])
        return {"folder": folder, "ids": [f["id"] for f in _files(world) if f["name"].startswith("photo_")]}

    def instruction(self, p):
        return f"Create a folder '{p['folder']}' in my file storage and move every file whose name starts with 'photo_' into it."

    def solution(self, p):
        return f'''apis.files.create_folder(access_token=tokens["files"], name={p["folder"]!r})
for f in all_pages(apis.files.list_files, access_token=tokens["files"], query="photo_"):
    if f["name"].startswith("photo_"):
        apis.files.move_file(access_token=tokens["files"], file_id=f["id"], folder={p["folder"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "files", "folders", {"name": p["folder"]}, "the folder created"),
                *updated_to(diff, after, "files", "files", p["ids"], "exactly the photos changed",
                            "folder", p["folder"], "photos moved")]


class RenameFile(Scenario):
    id, split, difficulty, apps = "files_rename", "test_challenge", 1, ("files",)
    pattern = "edit-one"
    changes = FILE_UPDATED

    def params(self, world, rng):
        f = rng.choice(_files(world, folder="Work") or _files(world, folder="Documents"))
        return {"old": f["name"], "folder": f["folder"], "id": f["id"], "new": f"final_{f['name']}"}

    def instruction(self, p):
        return f"Rename the file '{p['old']}' in my '{p['folder']}' folder to '{p['new']}'."

    def solution(self, p):
        return FIND_FILE.format(folder=p["folder"], name=p["old"]) + f'''
apis.files.rename_file(access_token=tokens["files"], file_id=f["id"], name={p["new"]!r})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "files", "files", [p["id"]], "only that file changed",
                          "name", p["new"], "renamed")


class DeleteOldFolder(Scenario):
    id, split, difficulty, apps = "files_delete_old", "test_challenge", 2, ("files",)
    pattern = "edit-one"
    changes = frozenset({("files", "files", "removed"), ("files", "folders", "removed")})

    def params(self, world, rng):
        old = _files(world, folder="Old")
        return {"ids": [f["id"] for f in old], "names": [f["name"] for f in old]}

    def instruction(self, p):
        return "Delete my 'Old' folder in file storage together with every file in it."

    def solution(self, p):
        return '''for f in all_pages(apis.files.list_files, access_token=tokens["files"], folder="Old"):
    apis.files.delete_file(access_token=tokens["files"], file_id=f["id"])
apis.files.delete_folder(access_token=tokens["files"], name="Old")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        gone = [f["name"] for f in rows(diff, "files", "folders", "removed")]
        return [same_ids("its files deleted", removed_ids(diff, "files", "files"), p["ids"]),
                Check("the folder deleted", gone == ["Old"], f"removed {gone}")]


class SaveEmailToFile(Scenario):
    id, split, difficulty, apps = "files_save_email", "test_challenge", 3, ("phone", "email", "files")
    pattern = "reconcile"
    changes = frozenset({("files", "files", "added")})

    def params(self, world, rng):
        c = by_email(world)[rng.choice(sorted({e["sender"] for e in inbox(world)} & set(by_email(world))))]
        latest = newest(inbox(world, sender=c["email"]))
        return {"name": full(c), "file": f"{c['first_name'].lower()}_latest.txt", "body": latest["body"]}

    def instruction(self, p):
        return (f"Save the body of the newest inbox email from {p['name']} as a file '{p['file']}' in my 'Documents' "
                "folder in file storage.")

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
mail = apis.email.search_emails(access_token=tokens["email"], folder="inbox", sender=who["email"], page_limit=1)[0]
body = apis.email.show_email(access_token=tokens["email"], email_id=mail["id"])["body"]
apis.files.create_file(access_token=tokens["files"], name={p["file"]!r}, folder="Documents", content=body)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "files", "files", {"name": p["file"], "folder": "Documents", "content": p["body"]},
                          "the file with the email body")]


class AppendToFile(Scenario):
    id, split, difficulty, apps = "files_append_line", "test_challenge", 2, ("files",)
    pattern = "edit-one"
    changes = FILE_UPDATED

    def params(self, world, rng):
        f = rng.choice(_files(world, folder="Work") or _files(world, folder="Documents"))
        return {"file": f["name"], "folder": f["folder"], "id": f["id"], "content": f["content"],
                "line": rng.choice(["Reviewed on June 3.", "Approved.", "Send to Ana."])}

    def instruction(self, p):
        return f"Add the line '{p['line']}' at the end of the file '{p['file']}' in my '{p['folder']}' folder."

    def solution(self, p):
        return FIND_FILE.format(folder=p["folder"], name=p["file"]) + f'''
content = apis.files.show_file(access_token=tokens["files"], file_id=f["id"])["content"]
apis.files.update_file(access_token=tokens["files"], file_id=f["id"], content=content.rstrip("\\n") + "\\n" + {p["line"]!r} + "\\n")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        content = after["files"]["files"][p["id"]]["content"]
        ok = content.rstrip("\n") == p["content"].rstrip("\n") + "\n" + p["line"]
        return [same_ids("only that file changed", updated_ids(diff, "files", "files"), [p["id"]]),
                Check("line appended, content kept", ok, f"content {content!r}")]


class PayInvoices(Scenario):
    id, split, difficulty, apps = "files_pay_invoices", "test_challenge", 3, ("files", "wallet")
    pattern = "reconcile"
    changes = WALLET_PAY | {("files", "folders", "added"), ("files", "files", "updated")}

    def params(self, world, rng):
        invoices = _files(world, folder="Invoices")
        pay = sorted((re.search(r"Payee: (\S+)", f["content"]).group(1), _amount(f["content"])) for f in invoices)
        return {"pay": pay, "ids": [f["id"] for f in invoices]}

    def instruction(self, p):
        return ("Pay every invoice file in my 'Invoices' folder with my wallet (each says 'Payee: <email>' and "
                "'Amount: <dollars>'; use the file name as the note), then move the files to a new folder 'Paid'.")

    def solution(self, p):
        return f'''import re
apis.files.create_folder(access_token=tokens["files"], name="Paid")
for f in all_pages(apis.files.list_files, access_token=tokens["files"], folder="Invoices"):
    content = apis.files.show_file(access_token=tokens["files"], file_id=f["id"])["content"]
    payee = re.search(r"Payee: (\\S+)", content).group(1)
    apis.wallet.send_money(access_token=tokens["wallet"], receiver_email=payee, amount={AMOUNT}, description=f["name"])
    apis.files.move_file(access_token=tokens["files"], file_id=f["id"], folder="Paid")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        paid = sorted((t["receiver_email"], t["amount"]) for t in rows(diff, "wallet", "transactions", "added"))
        return [Check("each invoice paid once", paid == p["pay"], f"paid {paid}"),
                balance_check(before, after, sum(a for _, a in p["pay"])),
                field_is(after, "files", "files", p["ids"], "folder", "Paid", "invoices moved to Paid")]


class EmailReceiptList(Scenario):
    id, split, difficulty, apps = "files_email_big_receipts", "test_challenge", 3, ("phone", "files", "email")
    pattern = "reconcile"
    changes = frozenset({("email", "emails", "added")})

    def params(self, world, rng):
        limit = float(rng.choice((40, 60, 80)))
        names = [f["name"] for f in _files(world, folder="Receipts") if _amount(f["content"]) > limit]
        c = contact(world, rng, lambda c: "family" in c["relationships"]) or contact(world, rng)
        return {"limit": limit, "names": names, "name": full(c), "email": c["email"]} if names else None

    def instruction(self, p):
        return (f"Email my contact {p['name']} the names of the receipt files in my 'Receipts' folder with an amount over "
                f"${p['limit']:.0f}, one per line in name order, with the subject 'Big receipts'.")

    def solution(self, p):
        return FIND.format(name=p["name"]) + f'''
import re
names = []
for f in all_pages(apis.files.list_files, access_token=tokens["files"], folder="Receipts"):
    content = apis.files.show_file(access_token=tokens["files"], file_id=f["id"])["content"]
    if {AMOUNT} > {p["limit"]}:
        names.append(f["name"])
apis.email.send_email(access_token=tokens["email"], recipients=[who["email"]], subject="Big receipts", body="\\n".join(sorted(names)))
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [emailed_lines(diff, p["email"], "Big receipts", p["names"], "one email listing the big receipts")]


SCENARIOS = [CountFolder(), CreateFile(), ShareWithContact(), UnshareAll(), ReceiptsTotal(), FilePhotos(), RenameFile(),
             DeleteOldFolder(), SaveEmailToFile(), AppendToFile(), PayInvoices(), EmailReceiptList()]
