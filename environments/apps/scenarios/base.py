"""What every scenario shares: the ``Scenario`` template, the login prelude of reference solutions,
and the check helpers (state, answer, collateral damage).

A scenario draws its parameters from a seeded world, writes the instruction, a reference solution
(Python that uses only ``apis``: the prelude logs in to ``apps`` and defines ``all_pages``) and
checks on the final state and the answer. The evaluator adds a collateral-damage check: no kind of
change outside ``changes`` (``(app, table, "added"|"removed"|"updated")``) is allowed. Its ``pattern``
(one of :data:`PATTERNS`) names the kind of work its reference solution does, whatever the apps.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DIFFICULTIES = (1, 2, 3)  # 1: one app, one action or lookup; 2: filtering, paging or two apps; 3: reconciling apps

#: The patterns a scenario's reference solution follows (``Scenario.pattern``), with what each means.
PATTERNS: dict[str, str] = {
    "lookup": "answer with a field of one record, found by name or as the newest, first, largest or cheapest",
    "aggregate": "page through a list and answer with a count, a sum or an average",
    "create": "add one record (contact, event, note, list, playlist, file, ...) with the fields the task gives",
    "edit-one": "find one record by name or position and change, delete or reply to it",
    "edit-all": "page through a list and change or delete every record that meets a condition",
    "find-person": "find a person in the phone contacts by name, then use their number or email in an app "
                   "(message, pay, invite, share, or pick out their records)",
    "order": "put products in the shopping cart and place one order",
    "reconcile": "read records in one app and act on them in another",
}


@dataclass
class Check:
    """One evaluation check: a name, whether it passed and a detail for failures."""

    name: str
    passed: bool
    detail: str = ""


def prelude(apps: tuple[str, ...]) -> str:
    """The reference solutions' opening: profile, tokens for ``apps`` and an ``all_pages`` helper."""
    return f'''profile = apis.supervisor.show_profile()
accounts = {{a["account_name"]: a for a in apis.supervisor.show_account_passwords()}}
tokens = {{app: getattr(apis, app).login(username=accounts[app]["username"],
                                        password=accounts[app]["password"])["access_token"]
          for app in {list(apps)!r}}}

def all_pages(fn, **kwargs):
    out, page = [], 0
    while True:
        batch = fn(page_index=page, page_limit=20, **kwargs)
        out += batch
        if len(batch) < 20:
            return out
        page += 1
'''


class Scenario:
    """A task template. Subclasses set ``id``, ``split``, ``difficulty``, ``apps`` (what the reference
    logs in to), ``pattern`` (a key of :data:`PATTERNS`), ``changes`` (allowed kinds of change) and
    define ``params``, ``instruction``, ``solution`` (code after the prelude) and ``checks``."""

    id = ""
    split = "train"
    difficulty = 1
    apps: tuple[str, ...] = ()
    pattern = ""
    changes: frozenset[tuple[str, str, str]] = frozenset()

    def params(self, world: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
        """Parameters drawn from ``world`` (None when this world has no fitting data)."""
        raise NotImplementedError

    def instruction(self, p: dict[str, Any]) -> str:
        """The task text given to the agent."""
        raise NotImplementedError

    def solution(self, p: dict[str, Any]) -> str:
        """The reference code that runs after the prelude (it ends with complete_task)."""
        raise NotImplementedError

    def checks(self, p: dict[str, Any], before: dict, after: dict, diff: dict, answer: Any) -> list[Check]:
        """Checks on the final state and the answer (collateral damage is checked by ``evaluate``)."""
        raise NotImplementedError

    def reference(self, p: dict[str, Any]) -> str:
        """The full reference solution: the prelude, then ``solution``."""
        return prelude(self.apps) + "\n" + self.solution(p).strip() + "\n"

    def evaluate(self, p: dict[str, Any], before: dict, after: dict, diff: dict, answer: Any) -> list[Check]:
        """The scenario's checks plus the collateral-damage check."""
        return self.checks(p, before, after, diff, answer) + [only(diff, self.changes)]


class Question(Scenario):
    """A scenario whose goal is an answer and no change: its one check compares the answer with
    ``p[expected]`` (see :func:`answer_check`)."""

    expected = ""

    def checks(self, p: dict[str, Any], before: dict, after: dict, diff: dict, answer: Any) -> list[Check]:
        """The answer equals the parameter named ``expected``."""
        return [answer_check(answer, p[self.expected])]


def only(diff: dict[str, Any], allowed: frozenset[tuple[str, str, str]] | set[tuple[str, str, str]]) -> Check:
    """Check that the diff has no kind of change outside ``allowed`` (app, table, added|removed|updated)."""
    extra = [f"{app}.{table} {kind}" for app, tables in diff.items() for table, change in tables.items()
             for kind, changed in change.items() if changed and (app, table, kind) not in allowed]
    return Check("no other changes", not extra, "unexpected: " + ", ".join(extra) if extra else "")


def rows(diff: dict[str, Any], app: str, table: str, kind: str) -> list[Any]:
    """The rows of one kind of change of one table."""
    return diff.get(app, {}).get(table, {}).get(kind, [])


def updated_ids(diff: dict[str, Any], app: str, table: str) -> list[Any]:
    """Sorted ids of the updated rows of a table."""
    return sorted(old["id"] if "id" in old else old["product_id"] for old, _ in rows(diff, app, table, "updated"))


def removed_ids(diff: dict[str, Any], app: str, table: str) -> list[Any]:
    """Sorted ids of the removed rows of a table."""
    return sorted(r["id"] if "id" in r else r["product_id"] for r in rows(diff, app, table, "removed"))


def answer_check(answer: Any, expected: Any) -> Check:
    """The answer equals ``expected`` (numbers within a cent; text case-insensitively)."""
    if isinstance(expected, (int, float)):
        try:
            ok = abs(float(str(answer).replace("$", "").replace(",", "")) - float(expected)) < 0.01
        except (TypeError, ValueError):
            ok = False
    else:
        ok = str(answer).strip().strip("'\"").lower() == str(expected).lower()
    return Check("answer", ok, f"expected {expected!r}, got {answer!r}")


def added_one(diff: dict[str, Any], app: str, table: str, want: dict[str, Any], name: str) -> Check:
    """Exactly one row was added to the table and it has the ``want`` fields."""
    added = rows(diff, app, table, "added")
    ok = len(added) == 1 and all(_same(added[0].get(k), v) for k, v in want.items())
    return Check(name, ok, f"added: {added}")


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) < 0.01
    if isinstance(want, str) and isinstance(got, str):
        return got.strip() == want.strip()
    return got == want


def emailed_lines(diff: dict[str, Any], email: str, subject: str, lines: list[str], name: str) -> Check:
    """Exactly one email was added, to ``email`` alone, with ``subject`` and a body of ``lines``, one per line."""
    added = rows(diff, "email", "emails", "added")
    ok = len(added) == 1 and added[0]["recipients"] == [email] and added[0]["subject"] == subject \
        and [x.strip() for x in added[0]["body"].strip().splitlines()] == lines
    return Check(name, ok, f"added: {added}")


def field_is(after: dict[str, Any], app: str, table: str, ids: list[Any], field: str, value: Any, name: str) -> Check:
    """Every row ``ids`` of a table now has ``field == value``."""
    table_rows = after[app][table]
    wrong = [i for i in ids if i not in table_rows or table_rows[i][field] != value]
    return Check(name, not wrong, f"rows with the wrong {field}: {wrong}")


def updated_to(diff: dict[str, Any], after: dict[str, Any], app: str, table: str, ids: list[Any], changed: str,
               field: str, value: Any, name: str) -> list[Check]:
    """Two checks: exactly the rows ``ids`` of a table were updated (named ``changed``), and each of
    them now has ``field == value`` (named ``name``)."""
    return [same_ids(changed, updated_ids(diff, app, table), ids), field_is(after, app, table, ids, field, value, name)]


def same_ids(name: str, got: list[Any], want: list[Any]) -> Check:
    """Two id lists agree (order ignored)."""
    return Check(name, sorted(got) == sorted(want), f"expected {sorted(want)}, got {sorted(got)}")


def balance_check(before: dict, after: dict, spent: float) -> Check:
    """The wallet balance went down by exactly ``spent``."""
    old, new = before["wallet"]["account"][1]["balance"], after["wallet"]["account"][1]["balance"]
    return Check("balance", abs(old - spent - new) < 0.01, f"expected {old - spent:.2f}, got {new:.2f}")


def full(c: dict[str, Any]) -> str:
    """A contact's full name."""
    return f"{c['first_name']} {c['last_name']}"


def contact(world: dict, rng: random.Random, pred: Callable[[dict], bool] = lambda c: True) -> dict | None:
    """A random contact satisfying ``pred`` (None if there is none)."""
    options = [c for c in world["phone"]["contacts"].values() if pred(c)]
    return rng.choice(options) if options else None


def by_email(world: dict) -> dict[str, dict]:
    """Contacts keyed by email."""
    return {c["email"]: c for c in world["phone"]["contacts"].values()}


def inbox(world: dict, **where: Any) -> list[dict]:
    """The emails in the inbox whose fields equal ``where``."""
    return [e for e in world["email"]["emails"].values() if e["folder"] == "inbox"
            and all(e[k] == v for k, v in where.items())]


def newest(emails: list[dict]) -> dict:
    """The most recently sent of some emails."""
    return max(emails, key=lambda e: (e["sent_at"], e["id"]))


def money(text: str) -> float | None:
    """The first dollar amount in a text."""
    found = re.search(r"\$(\d+(?:\.\d+)?)", text)
    return float(found.group(1)) if found else None


WALLET_PAY = frozenset({("wallet", "transactions", "added"), ("wallet", "account", "updated")})
