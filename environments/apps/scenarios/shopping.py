"""Scenarios on the shopping app."""

from __future__ import annotations

from typing import Any

from environments.apps.scenarios.base import (
    Check,
    Question,
    Scenario,
    added_one,
    removed_ids,
    rows,
    same_ids,
    updated_to,
)

ORDER = frozenset({("shopping", "orders", "added"), ("shopping", "products", "updated")})
ORDER_FROM_CART = ORDER | {("shopping", "cart", "added"), ("shopping", "cart", "updated"), ("shopping", "cart", "removed")}
FIND_PRODUCT = '''product = [x for x in all_pages(apis.shopping.search_products, query={name!r}) if x["name"] == {name!r}][0]'''


def _orders(world: dict, status: str) -> list[dict]:
    return [o for _, o in sorted(world["shopping"]["orders"].items()) if o["status"] == status]


def ordered_one_each(diff: dict[str, Any], ids: list[int], name: str) -> Check:
    """Exactly one order was placed, with one of each product ``ids`` and nothing else."""
    added = rows(diff, "shopping", "orders", "added")
    ok = len(added) == 1 and sorted((i["product_id"], i["quantity"]) for i in added[0]["items"]) == \
        [(pid, 1) for pid in ids]
    return Check(name, ok, f"added: {added}")


def other_cart_kept(after: dict[str, Any], cart: list[int], ordered: list[int]) -> Check:
    """The cart still holds the items of ``cart`` (its products before) that were not ``ordered``."""
    return same_ids("other cart items kept", sorted(after["shopping"]["cart"]), [pid for pid in cart if pid not in ordered])


def _unique_names(world: dict) -> dict[str, dict]:
    """Products whose name is a substring of no other product's name (found by one exact search)."""
    products = world["shopping"]["products"].values()
    return {p["name"]: p for p in products if sum(p["name"].lower() in o["name"].lower() for o in products) == 1}


class BuyProduct(Scenario):
    id, split, difficulty, apps = "shop_buy_product", "train", 2, ("shopping",)
    pattern = "order"
    changes = ORDER_FROM_CART

    def params(self, world, rng):
        cart = world["shopping"]["cart"]
        options = [p for p in _unique_names(world).values() if p["stock"] >= 2 and p["id"] not in cart]
        prod = rng.choice(sorted(options, key=lambda p: p["id"]))
        return {"name": prod["name"], "id": prod["id"], "qty": rng.randrange(1, 3), "cart": sorted(cart)}

    def instruction(self, p):
        return f"Order {p['qty']} of the product '{p['name']}'. Leave the other items in my cart where they are."

    def solution(self, p):
        return FIND_PRODUCT.format(name=p["name"]) + f'''
apis.shopping.add_to_cart(access_token=tokens["shopping"], product_id=product["id"], quantity={p["qty"]})
apis.shopping.place_order(access_token=tokens["shopping"], product_ids=[product["id"]])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "shopping", "orders", "added")
        ok = len(added) == 1 and [(i["product_id"], i["quantity"]) for i in added[0]["items"]] == [(p["id"], p["qty"])]
        return [Check("one order of exactly that product", ok, f"added: {added}"),
                same_ids("the rest of the cart kept", sorted(after["shopping"]["cart"]), p["cart"])]


class CheapestInCategory(Question):
    id, split, difficulty, apps = "shop_cheapest_category", "train", 1, ("shopping",)
    pattern = "lookup"
    expected = "name"

    def params(self, world, rng):
        cat = rng.choice(["kitchen", "books", "electronics", "garden", "toys"])
        options = sorted((p["price"], p["id"]) for p in world["shopping"]["products"].values()
                         if p["category"] == cat and p["stock"] > 0)
        if len(options) < 2 or options[0][0] == options[1][0]:
            return None
        return {"category": cat, "name": world["shopping"]["products"][options[0][1]]["name"]}

    def instruction(self, p):
        return f"What is the cheapest in-stock product in the shop's {p['category']} category? Answer with its name."

    def solution(self, p):
        return f'''items = all_pages(apis.shopping.search_products, category={p["category"]!r}, in_stock_only=True)
apis.supervisor.complete_task(answer=min(items, key=lambda x: x["price"])["name"])'''


class CancelPlaced(Scenario):
    id, split, difficulty, apps = "shop_cancel_placed", "train", 2, ("shopping",)
    pattern = "edit-all"
    changes = frozenset({("shopping", "orders", "updated"), ("shopping", "products", "updated")})

    def params(self, world, rng):
        ids = [o["id"] for o in _orders(world, "placed")]
        return {"ids": ids} if ids else None

    def instruction(self, p):
        return "Cancel all my shop orders that have not shipped yet (status 'placed')."

    def solution(self, p):
        return '''for order in all_pages(apis.shopping.show_orders, access_token=tokens["shopping"], status="placed"):
    apis.shopping.cancel_order(access_token=tokens["shopping"], order_id=order["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "shopping", "orders", p["ids"], "exactly the placed orders changed",
                          "status", "cancelled", "cancelled")


class WishlistAdd(Scenario):
    id, split, difficulty, apps = "shop_wishlist_add", "train", 1, ("shopping",)
    pattern = "create"
    changes = frozenset({("shopping", "wishlist", "added")})

    def params(self, world, rng):
        options = [p for p in _unique_names(world).values() if p["id"] not in world["shopping"]["wishlist"]]
        prod = rng.choice(sorted(options, key=lambda p: p["id"]))
        return {"name": prod["name"], "id": prod["id"]}

    def instruction(self, p):
        return f"Put the product '{p['name']}' on my shopping wishlist."

    def solution(self, p):
        return FIND_PRODUCT.format(name=p["name"]) + '''
apis.shopping.add_to_wishlist(access_token=tokens["shopping"], product_id=product["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "shopping", "wishlist", {"product_id": p["id"]}, "the product on the wishlist")]


class ReviewDelivered(Scenario):
    id, split, difficulty, apps = "shop_review_delivered", "train", 2, ("shopping",)
    pattern = "edit-all"
    changes = frozenset({("shopping", "reviews", "added")})

    def params(self, world, rng):
        delivered = _orders(world, "delivered")
        if not delivered:
            return None
        order = rng.choice(delivered)
        return {"order": order["id"], "ids": sorted({i["product_id"] for i in order["items"]}), "rating": rng.randrange(3, 6)}

    def instruction(self, p):
        return (f"Give every product in my delivered shop order #{p['order']} a {p['rating']}-star review with the "
                "text 'As described.'")

    def solution(self, p):
        return f'''order = apis.shopping.show_order(access_token=tokens["shopping"], order_id={p["order"]})
for pid in sorted({{i["product_id"] for i in order["items"]}}):
    apis.shopping.write_review(access_token=tokens["shopping"], product_id=pid, rating={p["rating"]}, text="As described.")
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        added = rows(diff, "shopping", "reviews", "added")
        ok = all(r["rating"] == p["rating"] and r["text"] == "As described." for r in added)
        return [same_ids("one review per product", [r["product_id"] for r in added], p["ids"]),
                Check("rating and text", ok, f"added: {added}")]


class RemoveExpensive(Scenario):
    id, split, difficulty, apps = "shop_remove_expensive", "train", 1, ("shopping",)
    pattern = "edit-all"
    changes = frozenset({("shopping", "cart", "removed")})

    def params(self, world, rng):
        prices = sorted(world["shopping"]["products"][pid]["price"] for pid in world["shopping"]["cart"])
        limit = float(int(prices[1]))
        ids = [pid for pid in sorted(world["shopping"]["cart"]) if world["shopping"]["products"][pid]["price"] > limit]
        return {"limit": limit, "ids": ids} if ids else None

    def instruction(self, p):
        return f"Remove every item that costs more than ${p['limit']:.0f} per unit from my shopping cart."

    def solution(self, p):
        return f'''for item in apis.shopping.show_cart(access_token=tokens["shopping"])["items"]:
    if item["price"] > {p["limit"]}:
        apis.shopping.remove_from_cart(access_token=tokens["shopping"], product_id=item["product_id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [same_ids("exactly the expensive items removed", removed_ids(diff, "shopping", "cart"), p["ids"])]


class CheckoutBestCoupon(Scenario):
    id, split, difficulty, apps = "shop_checkout_coupon", "test_normal", 2, ("shopping",)
    pattern = "order"
    changes = ORDER | {("shopping", "cart", "removed")}

    def params(self, world, rng):
        shop = world["shopping"]
        total = sum(shop["products"][pid]["price"] * row["quantity"] for pid, row in shop["cart"].items())
        if any(shop["products"][pid]["stock"] < row["quantity"] for pid, row in shop["cart"].items()):
            return None
        fits = [c for c in shop["coupons"].values() if c["min_total"] <= total]
        best = max(fits, key=lambda c: c["percent_off"]) if fits else None
        return {"code": best and best["code"], "total": round(total * (1 - (best["percent_off"] if best else 0) / 100), 2)}

    def instruction(self, p):
        return "Check out my whole shopping cart, using the coupon that saves the most (if any applies)."

    def solution(self, p):
        return '''total = apis.shopping.show_cart(access_token=tokens["shopping"])["total"]
fits = [c for c in apis.shopping.show_coupons(access_token=tokens["shopping"]) if c["min_total"] <= total]
code = max(fits, key=lambda c: c["percent_off"])["code"] if fits else None
apis.shopping.place_order(access_token=tokens["shopping"], coupon_code=code)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [added_one(diff, "shopping", "orders", {"coupon_code": p["code"], "total": p["total"]},
                          "one order with the best coupon"),
                Check("the cart is empty", not after["shopping"]["cart"])]


class ReturnWithProduct(Scenario):
    id, split, difficulty, apps = "shop_return_product", "test_normal", 2, ("shopping",)
    pattern = "edit-all"
    changes = frozenset({("shopping", "orders", "updated")})

    def params(self, world, rng):
        delivered = _orders(world, "delivered")
        names = {i["name"] for o in delivered for i in o["items"]}
        if not names:
            return None
        name = rng.choice(sorted(names))
        return {"name": name, "ids": [o["id"] for o in delivered if any(i["name"] == name for i in o["items"])]}

    def instruction(self, p):
        return f"Return every delivered shop order that contains '{p['name']}'."

    def solution(self, p):
        return f'''for summary in all_pages(apis.shopping.show_orders, access_token=tokens["shopping"], status="delivered"):
    order = apis.shopping.show_order(access_token=tokens["shopping"], order_id=summary["id"])
    if any(i["name"] == {p["name"]!r} for i in order["items"]):
        apis.shopping.return_order(access_token=tokens["shopping"], order_id=order["id"])
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "shopping", "orders", p["ids"], "exactly those orders changed",
                          "status", "returned", "returned")


class BuyWishlist(Scenario):
    id, split, difficulty, apps = "shop_buy_wishlist", "test_normal", 3, ("shopping",)
    pattern = "order"
    changes = ORDER_FROM_CART | {("shopping", "wishlist", "removed")}

    def params(self, world, rng):
        shop = world["shopping"]
        limit = float(rng.choice((40, 60, 90)))
        ids = [pid for pid in sorted(shop["wishlist"]) if shop["products"][pid]["price"] <= limit
               and shop["products"][pid]["stock"] > shop["cart"].get(pid, {}).get("quantity", 0)]
        return {"limit": limit, "ids": ids, "cart": sorted(shop["cart"])} if ids else None

    def instruction(self, p):
        return (f"Order one of each product on my wishlist that costs at most ${p['limit']:.0f} and can be bought, in a "
                "single order, and take those products off the wishlist. Don't order anything else from my cart.")

    def solution(self, p):
        return f'''cart = {{i["product_id"]: i["quantity"] for i in apis.shopping.show_cart(access_token=tokens["shopping"])["items"]}}
chosen = []
for wish in apis.shopping.show_wishlist(access_token=tokens["shopping"]):
    product = apis.shopping.show_product(product_id=wish["product_id"])
    if product["price"] <= {p["limit"]} and product["stock"] > cart.get(product["id"], 0):
        chosen.append(product["id"])
for pid in chosen:
    if pid in cart:
        apis.shopping.update_cart_item(access_token=tokens["shopping"], product_id=pid, quantity=1)
    else:
        apis.shopping.add_to_cart(access_token=tokens["shopping"], product_id=pid)
apis.shopping.place_order(access_token=tokens["shopping"], product_ids=chosen)
for pid in chosen:
    apis.shopping.remove_from_wishlist(access_token=tokens["shopping"], product_id=pid)
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return [ordered_one_each(diff, p["ids"], "one order with one of each chosen product"),
                same_ids("those products off the wishlist", removed_ids(diff, "shopping", "wishlist"), p["ids"]),
                other_cart_kept(after, p["cart"], p["ids"])]


class SetCartQuantity(Scenario):
    id, split, difficulty, apps = "shop_cart_quantity", "test_normal", 1, ("shopping",)
    pattern = "edit-one"
    changes = frozenset({("shopping", "cart", "updated")})

    def params(self, world, rng):
        shop = world["shopping"]
        options = [pid for pid, row in sorted(shop["cart"].items()) if shop["products"][pid]["stock"] >= 3]
        if not options:
            return None
        pid = rng.choice(options)
        qty = rng.choice([q for q in (1, 2, 3) if q != shop["cart"][pid]["quantity"]])
        return {"name": shop["products"][pid]["name"], "id": pid, "qty": qty}

    def instruction(self, p):
        return f"Change the quantity of '{p['name']}' in my shopping cart to {p['qty']}."

    def solution(self, p):
        return f'''item = [i for i in apis.shopping.show_cart(access_token=tokens["shopping"])["items"] if i["name"] == {p["name"]!r}][0]
apis.shopping.update_cart_item(access_token=tokens["shopping"], product_id=item["product_id"], quantity={p["qty"]})
apis.supervisor.complete_task()'''

    def checks(self, p, before, after, diff, answer):
        return updated_to(diff, after, "shopping", "cart", [p["id"]], "only that item changed",
                          "quantity", p["qty"], "the new quantity")


class AverageRating(Question):
    id, split, difficulty, apps = "shop_average_rating", "test_normal", 1, ("shopping",)
    pattern = "aggregate"
    expected = "rating"

    def params(self, world, rng):
        reviewed = sorted({r["product_id"] for r in world["shopping"]["reviews"].values()})
        unique = {p["id"] for p in _unique_names(world).values()}
        options = [pid for pid in reviewed if pid in unique]
        if not options:
            return None
        pid = rng.choice(options)
        ratings = [r["rating"] for r in world["shopping"]["reviews"].values() if r["product_id"] == pid]
        return {"name": world["shopping"]["products"][pid]["name"], "rating": round(sum(ratings) / len(ratings), 2)}

    def instruction(self, p):
        return f"What is the average review rating of the product '{p['name']}'? Answer with the number (2 decimals)."

    def solution(self, p):
        return FIND_PRODUCT.format(name=p["name"]) + '''
ratings = [r["rating"] for r in all_pages(apis.shopping.show_reviews, product_id=product["id"])]
apis.supervisor.complete_task(answer=round(sum(ratings) / len(ratings), 2))'''


SCENARIOS = [BuyProduct(), CheapestInCategory(), CancelPlaced(), WishlistAdd(), ReviewDelivered(), RemoveExpensive(),
             CheckoutBestCoupon(), ReturnWithProduct(), BuyWishlist(), SetCartQuantity(), AverageRating()]
