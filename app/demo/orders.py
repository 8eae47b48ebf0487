"""A tiny demo order service for the demo hotline's webhook.

``router`` serves ``GET /{order_number}`` (mount it at ``/demo/orders``);
``create_demo_app()`` is a FastAPI app with the router already at ``/demo/orders`` (used
in-process by ``hotline flows test`` and the tests). Unknown orders answer 404.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel

PREFIX = "/demo/orders"
_ORDER = re.compile(r"^\d{4,12}$")


class Order(BaseModel):
    order_number: str
    item_zh: str
    item_en: str
    status: str
    status_zh: str
    status_en: str
    eta: str


DEMO_ORDERS: dict[str, Order] = {
    o.order_number: o
    for o in [
        Order(order_number="4567", item_zh="滚筒洗衣机", item_en="front-load washer",
              status="shipped", status_zh="已发货", status_en="has shipped", eta="2026-11-28"),
        Order(order_number="1234", item_zh="双门冰箱", item_en="two-door fridge",
              status="processing", status_zh="正在备货", status_en="is being prepared",
              eta="2026-12-02"),
        Order(order_number="8888", item_zh="空调", item_en="air conditioner",
              status="delivered", status_zh="已签收", status_en="was delivered",
              eta="2026-11-20"),
        Order(order_number="2468", item_zh="微波炉", item_en="microwave oven",
              status="out_for_delivery", status_zh="正在派送", status_en="is out for delivery",
              eta="2026-11-26"),
        Order(order_number="13579", item_zh="电视机", item_en="television",
              status="cancelled", status_zh="已取消", status_en="was cancelled", eta="-"),
    ]
}

router = APIRouter(tags=["demo"])


@router.get("/{order_number}", response_model=Order)
async def get_order(order_number: str) -> Order:
    if not _ORDER.match(order_number):
        raise HTTPException(status_code=422, detail="order numbers are 4 to 12 digits")
    order = DEMO_ORDERS.get(order_number)
    if order is None:
        raise HTTPException(status_code=404, detail="order not found")
    return order


@router.get("", response_model=list[Order])
async def list_orders() -> list[Order]:
    return list(DEMO_ORDERS.values())


def create_demo_app() -> FastAPI:
    app = FastAPI(title="Hotline demo order service")
    app.include_router(router, prefix=PREFIX)
    return app
