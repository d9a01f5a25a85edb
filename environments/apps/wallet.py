"""The wallet app: balance, money transfers and money requests."""

from __future__ import annotations

from typing import Any

from environments.apps.framework import ApiError, App, api, exchanged, paginate


class WalletApp(App):
    """A payment wallet: send money by email, see transactions, answer money requests."""

    name = "wallet"
    description = "Wallet: check the balance, send money by email, list transactions and approve/decline money requests."

    def _account(self) -> dict[str, Any]:
        return self.tables["account"][1]

    @api("Show the wallet balance in dollars.")
    def show_balance(self, access_token: str) -> dict[str, Any]:
        return {"balance": self._account()["balance"]}

    @api("List transactions, newest first.", email="only those with this counterpart email (None: all)",
         direction="'sent', 'received' or 'all'", page_index="page number from 0", page_limit="per page (1-20)")
    def show_transactions(self, access_token: str, email: str | None = None, direction: str = "all",
                          page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        rows = exchanged(self.tables["transactions"].values(), self.me(), direction, email, "sender_email",
                         "receiver_email", "created_at")
        return paginate(rows, page_index, page_limit)

    @api("Show one transaction.", transaction_id="the transaction's id")
    def show_transaction(self, access_token: str, transaction_id: int) -> dict[str, Any]:
        return self.find("transactions", transaction_id, "transaction")

    def _transfer(self, receiver_email: str, amount: float, description: str) -> int:
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount <= 0:
            raise ApiError("amount must be a positive number")
        if "@" not in str(receiver_email) or receiver_email == self.me():
            raise ApiError(f"invalid receiver_email {receiver_email!r}")
        account = self._account()
        if amount > account["balance"]:
            raise ApiError(f"insufficient balance: {account['balance']:.2f} available")
        account["balance"] = round(account["balance"] - amount, 2)
        tx_id = self.next_id("transactions")
        self.tables["transactions"][tx_id] = {"id": tx_id, "sender_email": self.me(), "receiver_email": receiver_email,
                                              "amount": round(float(amount), 2), "description": description,
                                              "created_at": self.now()}
        return tx_id

    @api("Send money to someone's email.", receiver_email="the receiver's email", amount="dollars (> 0)",
         description="a note shown to the receiver")
    def send_money(self, access_token: str, receiver_email: str, amount: float, description: str = "") -> dict[str, Any]:
        return {"message": "money sent", "transaction_id": self._transfer(receiver_email, amount, description)}

    @api("List money requests addressed to you, newest first.", status="'pending', 'approved', 'declined' or None (all)",
         page_index="page number from 0", page_limit="per page (1-20)")
    def show_money_requests(self, access_token: str, status: str | None = None, page_index: int = 0,
                            page_limit: int = 5) -> list[dict[str, Any]]:
        if status not in (None, "pending", "approved", "declined"):
            raise ApiError("status must be 'pending', 'approved', 'declined' or None")
        rows = [r for r in sorted(self.tables["requests"].values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
                if status is None or r["status"] == status]
        return paginate(rows, page_index, page_limit)

    def _pending(self, request_id: int) -> dict[str, Any]:
        request = self.find("requests", request_id, "money request")
        if request["status"] != "pending":
            raise ApiError(f"money request {request_id} is already {request['status']}")
        return request

    @api("Approve a pending money request: pays the requester.", request_id="the money request's id")
    def approve_money_request(self, access_token: str, request_id: int) -> dict[str, Any]:
        request = self._pending(request_id)
        tx_id = self._transfer(request["requester_email"], request["amount"], request["description"])
        request["status"] = "approved"
        return {"message": "money request approved", "transaction_id": tx_id}

    @api("Decline a pending money request.", request_id="the money request's id")
    def decline_money_request(self, access_token: str, request_id: int) -> dict[str, Any]:
        self._pending(request_id)["status"] = "declined"
        return {"message": "money request declined"}
