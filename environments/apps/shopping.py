"""The shopping app: a product catalogue, cart, orders (cancel, return), wishlist, reviews and coupons."""

from __future__ import annotations

import random
from typing import Any

from environments.apps.framework import ApiError, App, api, paginate, require_text

CATEGORIES = {
    "kitchen": ["Kettle", "Frying Pan", "Knife Set", "Blender", "Teapot", "Cutting Board"],
    "books": ["Cookbook", "Travel Guide", "Novel", "Atlas", "Poetry Collection", "Biography"],
    "electronics": ["Headphones", "Charger", "Speaker", "Keyboard", "Webcam", "Power Bank"],
    "garden": ["Watering Can", "Seed Pack", "Gloves", "Planter", "Hose", "Pruner"],
    "toys": ["Puzzle", "Kite", "Board Game", "Yo-yo", "Building Blocks", "Plush Bear"],
}
ADJECTIVES = ["Classic", "Compact", "Deluxe", "Eco", "Mini", "Pro", "Retro", "Smart"]
SELLERS = ["HomeGoods", "ShopRight", "Gadgetry", "GreenThumb", "PlayTime"]
ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")


def generate(rng: random.Random, me: dict[str, Any], stamp) -> dict[str, Any]:
    """Shopping tables: ~40 products, a cart, past orders, a wishlist, others' reviews and coupons."""
    names = rng.sample([(cat, f"{adj} {item}") for cat, items in CATEGORIES.items() for item in items
                        for adj in ADJECTIVES], 40)
    products = {i: {"id": i, "name": name, "category": cat, "price": float(rng.randrange(5, 150)) + rng.choice((0, .5, .99)),
                    "stock": rng.choice((0, 2, 5, 10, 20)), "seller": rng.choice(SELLERS)}
                for i, (cat, name) in enumerate(names, start=1)}
    cart = {pid: {"product_id": pid, "quantity": rng.randrange(1, 3)} for pid in rng.sample(sorted(products), 3)}
    orders = {}
    for i in range(1, 10):
        items = [{"product_id": pid, "name": products[pid]["name"], "quantity": rng.randrange(1, 3),
                  "price": products[pid]["price"]} for pid in rng.sample(sorted(products), rng.randrange(1, 4))]
        orders[i] = {"id": i, "items": items, "total": round(sum(it["price"] * it["quantity"] for it in items), 2),
                     "coupon_code": None, "status": rng.choice(ORDER_STATUSES[:4]), "created_at": stamp()}
    wishlist = {pid: {"product_id": pid, "added_at": stamp()} for pid in sorted(rng.sample(sorted(products), 6))}
    reviews, reviewers = {}, ["kim@shop.net", "lee@shop.net", "ray@shop.net", "sol@shop.net", "ana@shop.net"]
    for pid in rng.sample(sorted(products), 12):
        for author in rng.sample(reviewers, rng.randrange(1, 5)):
            i = len(reviews) + 1
            reviews[i] = {"id": i, "product_id": pid, "author_email": author, "rating": rng.randrange(1, 6),
                          "text": rng.choice(["Great!", "Okay.", "Broke quickly.", "Love it.", "Worth the price."])}
    coupons = {i: {"id": i, "code": code, "percent_off": pct, "min_total": float(minimum)}
               for i, (code, pct, minimum) in enumerate([("SAVE10", 10, 30), ("BIG20", 20, 150), ("TREAT15", 15, 80)],
                                                        start=1)}
    return {"products": products, "cart": cart, "orders": orders, "wishlist": wishlist, "reviews": reviews,
            "coupons": coupons}


class ShoppingApp(App):
    """An online shop: browse products, manage the cart and wishlist, order, cancel, return and review."""

    name = "shopping"
    description = ("Shopping: search products, manage your cart and wishlist, place, cancel and return orders, "
                   "use coupons and read or write reviews.")

    def _product(self, product_id: int) -> dict[str, Any]:
        return self.find("products", product_id, "product")

    def _order(self, order_id: int) -> dict[str, Any]:
        return self.find("orders", order_id, "order")

    @staticmethod
    def _quantity(quantity: Any) -> int:
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ApiError("quantity must be a positive integer")
        return quantity

    @api("Search products (ordered by id).", query="substring of the name (case-insensitive)",
         category="one of kitchen, books, electronics, garden, toys", max_price="only products up to this price",
         in_stock_only="only products with stock > 0", page_index="page number from 0", page_limit="per page (1-20)")
    def search_products(self, query: str = "", category: str | None = None, max_price: float | None = None,
                        in_stock_only: bool = False, page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        if category is not None and category not in CATEGORIES:
            raise ApiError(f"unknown category {category!r}; categories: {', '.join(CATEGORIES)}")
        q = str(query).lower()
        rows = [p for _, p in sorted(self.tables["products"].items()) if q in p["name"].lower()
                and (category is None or p["category"] == category)
                and (max_price is None or p["price"] <= max_price) and (not in_stock_only or p["stock"] > 0)]
        return paginate(rows, page_index, page_limit)

    @api("Show one product with its average rating.", product_id="the product's id")
    def show_product(self, product_id: int) -> dict[str, Any]:
        ratings = [r["rating"] for r in self.tables["reviews"].values() if r["product_id"] == product_id]
        return {**self._product(product_id), "num_reviews": len(ratings),
                "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None}

    @api("Show your cart: items with name, unit price and quantity, and the total.")
    def show_cart(self, access_token: str) -> dict[str, Any]:
        items = [{**row, "name": self.tables["products"][pid]["name"], "price": self.tables["products"][pid]["price"]}
                 for pid, row in sorted(self.tables["cart"].items())]
        return {"items": items, "total": round(sum(i["price"] * i["quantity"] for i in items), 2)}

    @api("Add a product to the cart (adds to the quantity if it is already there).", product_id="the product's id",
         quantity="how many")
    def add_to_cart(self, access_token: str, product_id: int, quantity: int = 1) -> dict[str, Any]:
        product = self._product(product_id)
        have = self.tables["cart"].get(product_id, {}).get("quantity", 0)
        if have + self._quantity(quantity) > product["stock"]:
            raise ApiError(f"only {product['stock']} of product {product_id} in stock")
        self.tables["cart"][product_id] = {"product_id": product_id, "quantity": have + quantity}
        return {"message": "added to cart"}

    @api("Set the quantity of a product in the cart.", product_id="the product's id", quantity="the new quantity")
    def update_cart_item(self, access_token: str, product_id: int, quantity: int) -> dict[str, Any]:
        row = self.find("cart", product_id, "cart item for product")
        if self._quantity(quantity) > self._product(product_id)["stock"]:
            raise ApiError(f"only {self._product(product_id)['stock']} of product {product_id} in stock")
        row["quantity"] = quantity
        return {"message": "cart updated"}

    @api("Remove a product from the cart.", product_id="the product's id")
    def remove_from_cart(self, access_token: str, product_id: int) -> dict[str, Any]:
        self.delete("cart", product_id, "cart item for product")
        return {"message": "removed from cart"}

    @api("List the coupon codes you can use.")
    def show_coupons(self, access_token: str) -> list[dict[str, Any]]:
        return [c for _, c in sorted(self.tables["coupons"].items())]

    @api("Order products from your cart (paid with your card on file); they leave the cart.",
         product_ids="which cart products to order (None: the whole cart)",
         coupon_code="a coupon code; its min_total applies to the ordered items")
    def place_order(self, access_token: str, product_ids: list[int] | None = None,
                    coupon_code: str | None = None) -> dict[str, Any]:
        cart = self.tables["cart"]
        chosen = sorted(cart) if product_ids is None else product_ids
        if not isinstance(chosen, list) or not chosen:
            raise ApiError("nothing to order: the cart is empty or product_ids is empty")
        for pid in chosen:
            self.find("cart", pid, "cart item for product")
            if cart[pid]["quantity"] > self._product(pid)["stock"]:
                raise ApiError(f"product {pid} has only {self._product(pid)['stock']} in stock")
        items = [{"product_id": pid, "name": self._product(pid)["name"], "quantity": cart[pid]["quantity"],
                  "price": self._product(pid)["price"]} for pid in chosen]
        total = sum(i["price"] * i["quantity"] for i in items)
        if coupon_code is not None:
            coupon = next((c for c in self.tables["coupons"].values() if c["code"] == coupon_code), None)
            if coupon is None:
                raise ApiError(f"unknown coupon code {coupon_code!r}")
            if total < coupon["min_total"]:
                raise ApiError(f"coupon {coupon_code} needs a total of at least {coupon['min_total']:.2f}")
            total *= 1 - coupon["percent_off"] / 100
        for pid in chosen:
            self._product(pid)["stock"] -= cart.pop(pid)["quantity"]
        order_id = self.next_id("orders")
        self.tables["orders"][order_id] = {"id": order_id, "items": items, "total": round(total, 2),
                                           "coupon_code": coupon_code, "status": "placed", "created_at": self.now()}
        return {"message": "order placed", "order_id": order_id, "total": round(total, 2)}

    @api("List your orders, newest first.", status="'placed', 'shipped', 'delivered', 'cancelled', 'returned' or None",
         page_index="page number from 0", page_limit="per page (1-20)")
    def show_orders(self, access_token: str, status: str | None = None, page_index: int = 0,
                    page_limit: int = 5) -> list[dict[str, Any]]:
        if status not in (None, *ORDER_STATUSES):
            raise ApiError(f"status must be one of {', '.join(ORDER_STATUSES)} or None")
        rows = [{k: o[k] for k in ("id", "total", "status", "created_at")}
                for o in sorted(self.tables["orders"].values(), key=lambda o: (o["created_at"], o["id"]), reverse=True)
                if status is None or o["status"] == status]
        return paginate(rows, page_index, page_limit)

    @api("Show an order with its items.", order_id="the order's id")
    def show_order(self, access_token: str, order_id: int) -> dict[str, Any]:
        return self._order(order_id)

    @api("Cancel an order that has not shipped yet (status 'placed'); the stock is put back.", order_id="the order's id")
    def cancel_order(self, access_token: str, order_id: int) -> dict[str, Any]:
        order = self._order(order_id)
        if order["status"] != "placed":
            raise ApiError(f"order {order_id} is {order['status']}; only placed orders can be cancelled")
        order["status"] = "cancelled"
        for item in order["items"]:
            self._product(item["product_id"])["stock"] += item["quantity"]
        return {"message": "order cancelled"}

    @api("Return a delivered order.", order_id="the order's id")
    def return_order(self, access_token: str, order_id: int) -> dict[str, Any]:
        order = self._order(order_id)
        if order["status"] != "delivered":
            raise ApiError(f"order {order_id} is {order['status']}; only delivered orders can be returned")
        order["status"] = "returned"
        return {"message": "return started"}

    @api("Show your wishlist (product ids, oldest first).")
    def show_wishlist(self, access_token: str) -> list[dict[str, Any]]:
        return sorted(self.tables["wishlist"].values(), key=lambda w: (w["added_at"], w["product_id"]))

    @api("Add a product to your wishlist.", product_id="the product's id")
    def add_to_wishlist(self, access_token: str, product_id: int) -> dict[str, Any]:
        self._product(product_id)
        if product_id in self.tables["wishlist"]:
            raise ApiError(f"product {product_id} is already on your wishlist")
        self.tables["wishlist"][product_id] = {"product_id": product_id, "added_at": self.now()}
        return {"message": "added to wishlist"}

    @api("Remove a product from your wishlist.", product_id="the product's id")
    def remove_from_wishlist(self, access_token: str, product_id: int) -> dict[str, Any]:
        self.delete("wishlist", product_id, "wishlist item for product")
        return {"message": "removed from wishlist"}

    @api("List the reviews of a product (ordered by id).", product_id="the product's id",
         page_index="page number from 0", page_limit="per page (1-20)")
    def show_reviews(self, product_id: int, page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        self._product(product_id)
        rows = [r for _, r in sorted(self.tables["reviews"].items()) if r["product_id"] == product_id]
        return paginate(rows, page_index, page_limit)

    @api("Review a product from one of your delivered orders (one review per product).", product_id="the product's id",
         rating="1 to 5 stars", text="the review text")
    def write_review(self, access_token: str, product_id: int, rating: int, text: str) -> dict[str, Any]:
        self._product(product_id)
        me = self.me()
        if not any(o["status"] == "delivered" and any(i["product_id"] == product_id for i in o["items"])
                   for o in self.tables["orders"].values()):
            raise ApiError(f"you can only review products from your delivered orders; product {product_id} is not one")
        if any(r["product_id"] == product_id and r["author_email"] == me for r in self.tables["reviews"].values()):
            raise ApiError(f"you already reviewed product {product_id}")
        if not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ApiError("rating must be an integer from 1 to 5")
        review_id = self.next_id("reviews")
        self.tables["reviews"][review_id] = {"id": review_id, "product_id": product_id, "author_email": me,
                                             "rating": rating, "text": require_text(text, "text")}
        return {"message": "review posted", "review_id": review_id}
