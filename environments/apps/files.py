"""The file storage app: folders of text files, editing, moving, renaming and sharing by email."""

from __future__ import annotations

import random
from typing import Any

from environments.apps.framework import ApiError, FolderApp, api, paginate, require_email, require_text

FOLDERS = ["Documents", "Photos", "Receipts", "Invoices", "Work"]
STORES = ["GroceryMart", "BookNook", "FuelStop", "PharmaPlus", "CafeLuna", "HardwareHub"]
DOC_NAMES = ["cv.txt", "plan.txt", "ideas.txt", "letter.txt", "todo.txt", "minutes.txt", "draft.txt", "budget.txt"]


def generate(rng: random.Random, me: dict[str, Any], contacts: dict[int, dict[str, Any]], stamp) -> dict[str, Any]:
    """File tables: receipts and invoices with amounts, photos, documents; some shared with contacts."""
    people = [c["email"] for c in contacts.values()]
    files: dict[int, dict[str, Any]] = {}

    def add(name: str, folder: str, content: str) -> None:
        i = len(files) + 1
        files[i] = {"id": i, "name": name, "folder": folder, "content": content, "size": len(content),
                    "shared_with": sorted(rng.sample(people, rng.choice((0, 0, 0, 1, 2)))), "created_at": stamp()}

    for day in sorted(rng.sample(range(1, 29), 7)):
        add(f"receipt_2024-05-{day:02d}.txt", "Receipts",
            f"Store: {rng.choice(STORES)}\nAmount: {rng.randrange(5, 150)}.{rng.choice(('00', '50', '99'))}\n")
    for n, payee in enumerate(rng.sample(people, 3), start=1):
        add(f"invoice_{n:03d}.txt", "Invoices", f"Payee: {payee}\nAmount: {rng.randrange(20, 90)}.00\n")
    for n in rng.sample(range(100, 999), 6):
        add(f"photo_{n}.jpg", rng.choice(("Photos", "Documents")), f"<jpeg image {n}>")
    for name in rng.sample(DOC_NAMES, rng.randrange(4, 7)):
        add(name, rng.choice(("Documents", "Work")), f"{name[:-4].title()}: notes go here.\n")
    folders = {i: {"id": i, "name": name} for i, name in enumerate(FOLDERS + ["Old"], start=1)}
    for name in rng.sample(DOC_NAMES, rng.randrange(1, 4)):
        add(f"old_{name}", "Old", "outdated\n")
    return {"folders": folders, "files": files}


class FilesApp(FolderApp):
    """Cloud file storage: text files in folders, shared by email."""

    name = "files"
    description = "Files: list folders and files, read, create, edit, rename, move and delete files, share them by email."

    def _file(self, file_id: int) -> dict[str, Any]:
        return self.find("files", file_id, "file")

    def _name_free(self, name: str, folder: str, but: int | None = None) -> str:
        require_text(name, "name")
        if "/" in name:
            raise ApiError("file names cannot contain '/'")
        if any(f["name"] == name and f["folder"] == folder and f["id"] != but for f in self.tables["files"].values()):
            raise ApiError(f"a file named {name!r} already exists in {folder}")
        return name

    @api("List the folders with how many files each holds.")
    def list_folders(self, access_token: str) -> list[dict[str, Any]]:
        files = self.tables["files"].values()
        return [{"name": n, "num_files": sum(f["folder"] == n for f in files)} for n in self._folder_names()]

    @api("Delete an empty folder.", name="the folder name")
    def delete_folder(self, access_token: str, name: str) -> dict[str, Any]:
        self._folder(name)
        if any(f["folder"] == name for f in self.tables["files"].values()):
            raise ApiError(f"folder {name!r} is not empty; move or delete its files first")
        del self.tables["folders"][next(i for i, f in self.tables["folders"].items() if f["name"] == name)]
        return {"message": "folder deleted"}

    @api("List files by name (without content: use show_file).", folder="only this folder (None: all)",
         query="substring of the file name", page_index="page number from 0", page_limit="per page (1-20)")
    def list_files(self, access_token: str, folder: str | None = None, query: str = "", page_index: int = 0,
                   page_limit: int = 5) -> list[dict[str, Any]]:
        if folder is not None:
            self._folder(folder)
        rows = [{k: v for k, v in f.items() if k != "content"}
                for f in sorted(self.tables["files"].values(), key=lambda f: (f["name"], f["id"]))
                if (folder is None or f["folder"] == folder) and str(query) in f["name"]]
        return paginate(rows, page_index, page_limit)

    @api("Show a file with its content.", file_id="the file's id")
    def show_file(self, access_token: str, file_id: int) -> dict[str, Any]:
        return self._file(file_id)

    @api("Create a text file.", name="the file name", folder="an existing folder", content="the text")
    def create_file(self, access_token: str, name: str, folder: str, content: str = "") -> dict[str, Any]:
        self._name_free(name, self._folder(folder))
        file_id = self.next_id("files")
        self.tables["files"][file_id] = {"id": file_id, "name": name, "folder": folder, "content": str(content),
                                         "size": len(str(content)), "shared_with": [], "created_at": self.now()}
        return {"message": "file created", "file_id": file_id}

    @api("Replace the content of a file.", file_id="the file's id", content="the new text")
    def update_file(self, access_token: str, file_id: int, content: str) -> dict[str, Any]:
        row = self._file(file_id)
        row["content"], row["size"] = str(content), len(str(content))
        return {"message": "file updated"}

    @api("Rename a file.", file_id="the file's id", name="the new name")
    def rename_file(self, access_token: str, file_id: int, name: str) -> dict[str, Any]:
        row = self._file(file_id)
        row["name"] = self._name_free(name, row["folder"], but=file_id)
        return {"message": "file renamed"}

    @api("Move a file to another folder.", file_id="the file's id", folder="the target folder")
    def move_file(self, access_token: str, file_id: int, folder: str) -> dict[str, Any]:
        row = self._file(file_id)
        self._name_free(row["name"], self._folder(folder), but=file_id)
        row["folder"] = folder
        return {"message": f"moved to {folder}"}

    @api("Delete a file.", file_id="the file's id")
    def delete_file(self, access_token: str, file_id: int) -> dict[str, Any]:
        self.delete("files", file_id, "file")
        return {"message": "file deleted"}

    @api("Share a file with someone by email.", file_id="the file's id", email="who to share it with")
    def share_file(self, access_token: str, file_id: int, email: str) -> dict[str, Any]:
        row = self._file(file_id)
        if require_email(email) in row["shared_with"]:
            raise ApiError(f"file {file_id} is already shared with {email}")
        row["shared_with"] = sorted([*row["shared_with"], email])
        return {"message": "file shared"}

    @api("Stop sharing a file with someone.", file_id="the file's id", email="who to stop sharing with")
    def unshare_file(self, access_token: str, file_id: int, email: str) -> dict[str, Any]:
        row = self._file(file_id)
        if email not in row["shared_with"]:
            raise ApiError(f"file {file_id} is not shared with {email}")
        row["shared_with"] = [e for e in row["shared_with"] if e != email]
        return {"message": "sharing stopped"}
